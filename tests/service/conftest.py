"""A real HTTP server on 127.0.0.1 (uvicorn in a thread) over the example corpus."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
uvicorn = pytest.importorskip("uvicorn")

from colbert_retriever import ColBERT  # noqa: E402
from colbert_retriever.service import ServiceConfig, create_app  # noqa: E402
from colbert_retriever.text.corpus import read_corpus  # noqa: E402

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


class Server:
    """uvicorn serving `app` on a free port until `stop`."""

    def __init__(self, app: object) -> None:
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                msg = "the test server did not start"
                raise RuntimeError(msg)
            time.sleep(0.05)
        (sock,) = [s for server in self.server.servers for s in server.sockets]
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@pytest.fixture(scope="session")
def example_retriever(minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> ColBERT:
    colbert = ColBERT.create(tmp_path_factory.mktemp("served") / "index", model=minilm_path, show_progress=False)
    colbert.add_documents(read_corpus(EXAMPLES / "corpus.jsonl"))
    return colbert


@pytest.fixture(scope="session")
def served(example_retriever: ColBERT) -> Iterator[str]:
    """The example index, read-only use: its URL."""
    config = ServiceConfig(max_k=50, max_body_bytes=64_000, max_batch=8, max_query_chars=1000)
    server = Server(create_app(example_retriever, config))
    yield server.url
    server.stop()


@pytest.fixture
def start_server() -> Iterator[object]:
    """Start a server for an app of the test's own; stopped at the end of the test."""
    started: list[Server] = []

    def start(app: object) -> str:
        started.append(Server(app))
        return started[-1].url

    yield start
    for server in started:
        server.stop()
