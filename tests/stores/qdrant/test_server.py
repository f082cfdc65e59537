"""With `url=`, the store talks to a Qdrant server over REST: these are the requests it makes,
recorded by a stand-in HTTP server on 127.0.0.1 that answers as Qdrant's API documents.

No Qdrant server can run here, so this proves what is sent (layout, API key, visibility
protocol, one query per search), not that a real server accepts it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

pytest.importorskip("qdrant_client")

from colbert_retriever import ColBERT, QdrantConfig
from colbert_retriever.stores.qdrant.collection import point_id

OPERATION = {"operation_id": 1, "status": "completed"}


class _Qdrant(BaseHTTPRequestHandler):
    """Answers the few routes the store uses; records every request."""

    requests: list[dict[str, Any]]
    created: bool

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        path = self.path.split("?")[0]
        self.requests.append({"method": self.command, "path": path, "headers": dict(self.headers), "body": body})
        routes: dict[tuple[str, str], Any] = {
            ("GET", "/"): {"title": "qdrant - vector search engine", "version": "1.20.0"},
            ("GET", "/collections/docs/exists"): {"result": {"exists": type(self).created}},
            ("PUT", "/collections/docs"): {"result": True},
            ("PUT", "/collections/docs/index"): {"result": OPERATION},
            ("PUT", "/collections/docs/points"): {"result": OPERATION},
            ("POST", "/collections/docs/points/payload"): {"result": OPERATION},
            ("POST", "/collections/docs/points/delete"): {"result": OPERATION},
            ("POST", "/collections/docs/points/scroll"): {"result": {"points": [], "next_page_offset": None}},
            ("POST", "/collections/docs/points/count"): {"result": {"count": 1}},
            ("POST", "/collections/docs/points/query"): {"result": {"points": []}},
        }
        answer = routes.get((self.command, path))
        if (self.command, path) == ("PUT", "/collections/docs"):
            type(self).created = True
        status = 200 if answer is not None else 404
        payload = json.dumps(answer if path == "/" else {**(answer or {}), "status": "ok", "time": 0.0}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = _answer

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, Any]]]]:
    handler = type("Handler", (_Qdrant,), {"requests": [], "created": False})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}", handler.requests
    httpd.shutdown()


def _one(requests: list[dict[str, Any]], method: str, path: str) -> list[dict[str, Any]]:
    return [r["body"] for r in requests if r["method"] == method and r["path"] == path]


@pytest.mark.filterwarnings("ignore:Api key is used with an insecure connection")
def test_the_requests_for_a_server(server: tuple[str, list[dict[str, Any]]], checkpoints) -> None:
    url, requests = server
    config = QdrantConfig(
        url=url,
        api_key="secret",
        collection="docs",
        shard_number=2,
        replication_factor=3,
        datatype="float16",
        on_disk=True,
        show_progress=False,
    )
    retriever = ColBERT.create(config, model=checkpoints["stanford"], show_progress=False)
    retriever.add(["the cat sat on the mat."], ids=["cat"], metadata=[{"year": 2021}])
    assert retriever.search("the cat", k=3, filters={"year": {"$gte": 2020}}, mode="late") == []

    assert all(r["headers"].get("api-key") == "secret" for r in requests)
    (created,) = _one(requests, "PUT", "/collections/docs")
    late = created["vectors"]["colbert"]
    assert late["size"] == 16
    assert late["distance"] == "Cosine"
    assert late["multivector_config"] == {"comparator": "max_sim"}
    assert late["hnsw_config"]["m"] == 0  # no graph over token vectors
    assert (late["datatype"], late["on_disk"]) == ("float16", True)
    assert created["vectors"]["prefetch"] == {"size": 16, "distance": "Cosine"}
    assert created["sparse_vectors"]["bm25"]["modifier"] == "idf"
    assert (created["shard_number"], created["replication_factor"]) == (2, 3)
    layout = created["metadata"]["colbert_retriever"]
    assert layout["model"]["digest"] == retriever.encoder.fingerprint.digest
    assert (layout["dim"], layout["prefetch"], layout["lexical"]) == (16, "mean", True)
    indexed = {body["field_name"]: body["field_schema"] for body in _one(requests, "PUT", "/collections/docs/index")}
    assert indexed == {
        "doc_id": "keyword",
        "write": "keyword",
        "live": "integer",
        "settled": "integer",
        "passage": "integer",
    }

    (upload,) = _one(requests, "PUT", "/collections/docs/points")
    (point,) = upload["points"]
    assert point["id"] == point_id("cat", 0, point["payload"]["write"])
    assert point["payload"]["doc_id"] == "cat"
    assert (point["payload"]["live"], point["payload"]["settled"]) == (0, 0)  # invisible until the write commits
    assert len(point["vector"]["colbert"][0]) == 16
    assert set(point["vector"]) == {"colbert", "prefetch", "bm25"}
    commit, settle = _one(requests, "POST", "/collections/docs/points/payload")  # versions.py's protocol
    assert (commit["payload"], settle["payload"]) == ({"live": 1}, {"settled": 1})
    assert commit["filter"]["must"][0]["match"]["value"] == point["payload"]["write"]
    (abandoned,) = _one(requests, "POST", "/collections/docs/points/delete")  # a dead writer's, an hour old
    assert abandoned["filter"]["must"][1]["key"] == "started"

    (query,) = _one(requests, "POST", "/collections/docs/points/query")  # passages; the pipeline groups them
    assert (query["limit"], query["using"]) == (3, "colbert")
    assert len(query["query"]["nearest"]) == 8  # the query's token vectors (query_maxlen 8), scored by MaxSim
    assert len(query["prefetch"]["query"]) == 16  # their mean, one vector under HNSW
    assert query["prefetch"]["using"] == "prefetch"
    assert query["prefetch"]["limit"] == config.prefetch_limit(3)
    live, year = query["filter"]["must"]
    assert live == {"key": "live", "match": {"value": 1}}
    assert year["must"][0] == {"key": "metadata.year", "range": {"gte": 2020}}
    assert query["prefetch"]["filter"] == query["filter"]  # the prefetch is filtered too: k hits when k pass
