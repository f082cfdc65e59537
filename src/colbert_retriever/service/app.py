"""The HTTP service: one retriever behind a small JSON API and a search page.

`create_app(retriever)` is a FastAPI application (the `serve` extra); `colbert-retriever
serve` runs it with uvicorn. Searches run concurrently in the server's thread pool (the
index's readers are thread-safe); writes take one lock, so one writer at a time, each an
atomic commit of the index. Errors are JSON `{"detail": "..."}` with a 4xx status naming the
problem: 401 bad API key, 404 unknown id, 409 duplicate id, 413 body too large, 422 bad input
(an unknown field, a k that is not an integer, a query over `max_query_chars`, an empty or
invisible id). A document id may hold any character: `GET /documents/{id}` takes one with
slashes (`notes/a.md`), and `GET /documents?id=...` any id at all.
"""

from __future__ import annotations

import dataclasses
import hmac
import threading
import uuid
from importlib.resources import files
from typing import Any

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, JSONResponse
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt

from colbert_retriever._version import __version__
from colbert_retriever.config import Mode, Unit
from colbert_retriever.errors import (
    ColbertRetrieverError,
    ConfigError,
    DocumentNotFoundError,
    DuplicateIdError,
    IndexLockedError,
)
from colbert_retriever.retriever import ColBERT
from colbert_retriever.service.limits import BodyLimit, ServiceConfig


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt field is a 422, never ignored


class _SearchOptions(_Request):
    k: StrictInt = Field(default=10, ge=1, description="Hits wanted (at most the server's max_k).")
    filters: dict[str, Any] | None = Field(default=None, description="The filter language, e.g. {'year': 2024}.")
    mode: Mode | None = Field(default=None, description="hybrid, late or lexical; the index's default if omitted.")
    unit: Unit = Field(default="document", description="document: one hit per document; passage: per passage.")
    highlights: StrictBool = Field(default=False, description="Add each hit's explanation (matched tokens and spans).")


class SearchRequest(_SearchOptions):
    query: str = Field(description="The question (at most the server's max_query_chars).")


class BatchSearchRequest(_SearchOptions):
    queries: list[str] = Field(description="The questions, answered in one pass over the index.")


class DocumentIn(_Request):
    id: str | None = Field(default=None, description="The document's id; generated if omitted (POST only).")
    text: str
    metadata: dict[str, Any] | None = None


class WriteRequest(_Request):
    documents: list[DocumentIn]


class DeleteRequest(_Request):
    ids: list[str]


def create_app(retriever: ColBERT, config: ServiceConfig | None = None) -> FastAPI:
    """A FastAPI app serving `retriever`'s index (see the module docstring for its rules)."""
    config = config or ServiceConfig()
    app = FastAPI(
        title="colbert-retriever",
        summary="Late-interaction (ColBERT) search over one index.",
        version=__version__,
    )
    app.add_middleware(BodyLimit, max_bytes=config.max_body_bytes)
    write_lock = threading.Lock()

    def authorize(request: Request) -> None:
        if config.api_key is None:
            return
        given = request.headers.get("x-api-key") or request.headers.get("authorization", "").removeprefix("Bearer ")
        if not hmac.compare_digest(given.encode(), config.api_key.encode()):
            raise HTTPException(401, "missing or wrong API key (send it as the X-API-Key header)")

    guarded = [Depends(authorize)]

    @app.exception_handler(ColbertRetrieverError)
    async def library_error(request: Request, exc: ColbertRetrieverError) -> JSONResponse:
        status = {DocumentNotFoundError: 404, DuplicateIdError: 409, IndexLockedError: 503, ConfigError: 422}
        code = next((code for kind, code in status.items() if isinstance(exc, kind)), 500)
        return JSONResponse({"detail": str(exc)}, status_code=code)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def page() -> str:
        return files("colbert_retriever.service").joinpath("page.html").read_text(encoding="utf-8")

    @app.get("/health", summary="Liveness and the number of documents")
    def health() -> dict[str, Any]:
        return {"status": "ok", "documents": len(retriever), "auth": config.api_key is not None}

    @app.get("/info", dependencies=guarded, summary="The index's IndexInfo")
    def info() -> dict[str, Any]:
        return dataclasses.asdict(retriever.info())

    @app.post("/search", dependencies=guarded, summary="The k best hits for one query")
    def search(body: SearchRequest) -> dict[str, Any]:
        _check_search(body, [body.query], config)
        hits = retriever.search(
            body.query, k=body.k, filters=body.filters, unit=body.unit, mode=body.mode, highlights=body.highlights
        )
        return {"hits": [hit.to_json() for hit in hits]}

    @app.post("/search/batch", dependencies=guarded, summary="The k best hits for each of several queries")
    def search_batch(body: BatchSearchRequest) -> dict[str, Any]:
        _check_search(body, body.queries, config)
        results = retriever.search_batch(
            body.queries, k=body.k, filters=body.filters, unit=body.unit, mode=body.mode, highlights=body.highlights
        )
        return {"results": [[hit.to_json() for hit in hits] for hits in results]}

    @app.get("/documents", dependencies=guarded, summary="One stored document, whole, by ?id=")
    def get_by_query(id: str) -> dict[str, Any]:
        (doc,) = retriever.get([id])
        return {"doc_id": doc.doc_id, "text": doc.text, "metadata": doc.metadata}

    @app.get("/documents/{doc_id:path}", dependencies=guarded, summary="One stored document, whole")
    def get(doc_id: str) -> dict[str, Any]:
        return get_by_query(doc_id)

    @app.post("/documents", dependencies=guarded, summary="Add documents (409 if an id exists)")
    def add(body: WriteRequest) -> dict[str, Any]:
        texts, ids, metadata = _columns(body, config)
        with write_lock:
            return {"ids": retriever.add(texts, ids=ids, metadata=metadata)}

    @app.put("/documents", dependencies=guarded, summary="Add or replace documents by id")
    def upsert(body: WriteRequest) -> dict[str, Any]:
        if any(doc.id is None for doc in body.documents):
            raise HTTPException(422, "an upsert needs an id for every document")
        texts, ids, metadata = _columns(body, config)
        with write_lock:
            return {"ids": retriever.upsert(texts, ids=ids, metadata=metadata)}

    @app.post("/documents/delete", dependencies=guarded, summary="Delete documents by id (404 if one is missing)")
    def delete(body: DeleteRequest) -> dict[str, Any]:
        with write_lock:
            retriever.delete(body.ids)
        return {"deleted": len(body.ids)}

    return app


def _check_search(body: _SearchOptions, queries: list[str], config: ServiceConfig) -> None:
    """The server's limits on a search, checked before any work."""
    if body.k > config.max_k:
        raise HTTPException(422, f"k must be at most {config.max_k}, got {body.k}")
    if len(queries) > config.max_batch:
        raise HTTPException(422, f"at most {config.max_batch} queries per batch, got {len(queries)}")
    longest = max(map(len, queries), default=0)
    if longest > config.max_query_chars:
        raise HTTPException(422, f"a query may have at most {config.max_query_chars} characters, got {longest}")


def _columns(body: WriteRequest, config: ServiceConfig) -> tuple[list[str], list[str], list[dict[str, Any] | None]]:
    """The texts, ids (generated where missing) and metadata of a write."""
    if len(body.documents) > config.max_documents:
        raise HTTPException(422, f"at most {config.max_documents} documents per request, got {len(body.documents)}")
    ids = [doc.id for doc in body.documents]
    return (
        [doc.text for doc in body.documents],
        [uuid.uuid4().hex if doc_id is None else doc_id for doc_id in ids],  # "" is refused, not replaced
        [doc.metadata for doc in body.documents],
    )
