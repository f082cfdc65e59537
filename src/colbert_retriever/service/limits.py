"""What the service accepts: its settings, and the request-size limit it enforces while reading."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from colbert_retriever.errors import ConfigError


@dataclass(frozen=True)
class ServiceConfig:
    """Limits and access of the HTTP service.

    Attributes:
        api_key: If set, every route but `/`, `/health` and the docs needs it as the
            `X-API-Key` header (or `Authorization: Bearer KEY`).
        max_k: The largest `k` a search may ask for.
        max_batch: Queries per batch search.
        max_documents: Documents per write request.
        max_body_bytes: The largest request body; a larger one is refused with 413 before
            it is read whole.
        max_query_chars: The longest query a search takes (422 before any work): a query
            is a question, and the full-text side's cost grows with its words.
    """

    api_key: str | None = field(default=None, repr=False)  # the key never reaches a log
    max_k: int = 1000
    max_batch: int = 256
    max_documents: int = 1000
    max_body_bytes: int = 16 * 1024 * 1024
    max_query_chars: int = 4096

    def __post_init__(self) -> None:
        for name in ("max_k", "max_batch", "max_documents", "max_body_bytes", "max_query_chars"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                msg = f"ServiceConfig.{name} must be a positive integer, got {value!r}"
                raise ConfigError(msg)
        if self.api_key is not None and not self.api_key:
            msg = "ServiceConfig.api_key must not be empty (None: no key)"
            raise ConfigError(msg)


class BodyLimit:
    """ASGI middleware: a request body over `max_bytes` gets 413, whether it declares its
    length (refused at once) or streams it in chunks (refused once the count passes it)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", [])).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await self._refuse(send)
            return
        seen, refused = 0, False

        async def counted() -> dict[str, Any]:
            nonlocal seen, refused
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes and not refused:
                refused = True
                await self._refuse(send)
                return {"type": "http.disconnect"}  # the app stops reading; its answer is dropped
            return message

        async def send_unless_refused(message: dict[str, Any]) -> None:
            if not refused:
                await send(message)

        try:
            await self.app(scope, counted, send_unless_refused)
        except Exception:
            if not refused:  # after a refusal the app's complaint about the cut body is moot
                raise

    async def _refuse(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": body})
