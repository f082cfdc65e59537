"""The HTTP service over real HTTP: every route, concurrent clients, bad requests, the key."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from colbert_retriever import ColBERT, ConfigError
from colbert_retriever.service import ServiceConfig, create_app


def test_search_answers_what_the_library_and_the_cli_answer(served: str, example_retriever: ColBERT) -> None:
    assert httpx.get(f"{served}/health").json() == {"status": "ok", "documents": 20, "auth": False}
    body = {"query": "Who wrote Hamlet?", "k": 3}
    hits = httpx.post(f"{served}/search", json=body).json()["hits"]
    expected = example_retriever.search("Who wrote Hamlet?", k=3)
    assert hits == json.loads(json.dumps([hit.to_json() for hit in expected]))
    assert hits[0]["doc_id"] == "shakespeare"
    assert set(hits[0]) >= {"doc_id", "score", "normalized_score", "rank", "text", "metadata", "start", "end"}
    lit = httpx.post(f"{served}/search", json={**body, "highlights": True, "filters": {"title": "Coffee"}}).json()
    assert [hit["doc_id"] for hit in lit["hits"]] == ["coffee"]
    assert lit["hits"][0]["explanation"][0].keys() == {"query_token", "doc_token", "start", "end", "similarity"}
    batch = httpx.post(f"{served}/search/batch", json={"queries": ["Who wrote Hamlet?", "coffee"], "k": 1}).json()
    assert [[hit["doc_id"] for hit in hits] for hits in batch["results"]] == [["shakespeare"], ["coffee"]]
    doc = httpx.get(f"{served}/documents/coffee").json()
    assert doc == {
        "doc_id": "coffee",
        "text": example_retriever.get(["coffee"])[0].text,
        "metadata": {"title": "Coffee"},
    }
    assert httpx.get(f"{served}/info").json()["documents"] == 20
    assert "/search" in httpx.get(f"{served}/openapi.json").json()["paths"]
    assert httpx.get(f"{served}/docs").status_code == 200


def test_concurrent_clients_get_the_answers_of_one_client(served: str) -> None:
    queries = ["Who wrote Hamlet?", "coffee", "blood sugar", "ordered delivery", "the moon"] * 4
    alone = {q: httpx.post(f"{served}/search", json={"query": q, "k": 2}).json() for q in set(queries)}
    with ThreadPoolExecutor(8) as pool, httpx.Client() as client:
        answers = list(pool.map(lambda q: client.post(f"{served}/search", json={"query": q, "k": 2}).json(), queries))
    assert answers == [alone[q] for q in queries]


@pytest.mark.parametrize(
    ("route", "body", "status", "says"),
    [
        ("/search", {"query": "x", "k": 51}, 422, "k must be at most 50"),
        ("/search", {"query": "x", "k": 0}, 422, "greater than or equal to 1"),
        ("/search", {"query": "   "}, 422, "whitespace only"),
        ("/search", {"query": "x", "filters": {"year": {"$regex": "a"}}}, 422, "$regex"),
        ("/search", {"query": "x", "top_k": 3}, 422, "top_k"),  # a misspelt field is not ignored
        ("/search", {"k": 3}, 422, "query"),
        ("/search/batch", {"queries": ["q"] * 9}, 422, "at most 8 queries"),
        ("/documents/delete", {"ids": ["no-such-id"]}, 404, "no-such-id"),
        ("/search", {"query": "x" * 70_000}, 413, "over 64000 bytes"),
        ("/search", {"query": "x " * 600}, 422, "at most 1000 characters, got 1200"),
        ("/search/batch", {"queries": ["q", "x" * 1001]}, 422, "at most 1000 characters"),
        ("/search/batch", {"queries": ["q"], "query": "stray"}, 422, "query"),  # a stray field is not ignored
        ("/search", {"query": "x", "k": True}, 422, "valid integer"),  # true is not k=1
        ("/search", {"query": "x", "k": "3"}, 422, "valid integer"),
        ("/search", {"query": "x", "highlights": "yes"}, 422, "valid boolean"),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_problem(served: str, route: str, body: dict, status: int, says: str) -> None:
    response = httpx.post(f"{served}{route}", json=body)
    assert response.status_code == status
    assert says in json.dumps(response.json())


def test_bodies_over_the_limit_are_refused_while_streaming(served: str) -> None:
    def chunks():  # no Content-Length: the server counts as it reads
        yield b'{"query": "'
        for _ in range(100):
            yield b"x" * 1000
        yield b'"}'

    response = httpx.post(f"{served}/search", content=chunks(), headers={"content-type": "application/json"})
    assert response.status_code == 413
    assert httpx.get(f"{served}/health").status_code == 200  # the server is still fine
    not_json = httpx.post(f"{served}/search", content=b"{not json", headers={"content-type": "application/json"})
    assert not_json.status_code == 422


def test_writes_are_serialised_and_each_is_whole(minilm_path: Path, tmp_path: Path, start_server) -> None:
    retriever = ColBERT.create(tmp_path / "index", model=minilm_path, show_progress=False)
    url = start_server(create_app(retriever, ServiceConfig(api_key="s3cret")))
    key = {"x-api-key": "s3cret"}
    assert httpx.post(f"{url}/search", json={"query": "x"}).status_code == 401
    assert httpx.post(f"{url}/search", json={"query": "x"}, headers={"x-api-key": "wrong"}).status_code == 401
    assert httpx.get(f"{url}/health").json()["auth"] is True  # open: a load balancer's probe has no key

    def add(i: int) -> httpx.Response:
        docs = [
            {"id": f"d{i}-{j}", "text": f"Document {i} part {j} about glaciers.", "metadata": {"i": i}}
            for j in range(3)
        ]
        return httpx.post(f"{url}/documents", json={"documents": docs}, headers=key, timeout=60)

    with ThreadPoolExecutor(4) as pool:
        assert [r.status_code for r in pool.map(add, range(6))] == [200] * 6
    assert len(retriever) == 18
    again = httpx.post(f"{url}/documents", json={"documents": [{"id": "d0-0", "text": "dup"}]}, headers=key)
    assert again.status_code == 409
    assert len(retriever) == 18  # the refused write left nothing behind
    bearer = {"authorization": "Bearer s3cret"}
    replaced = httpx.put(
        f"{url}/documents", json={"documents": [{"id": "d0-0", "text": "Sand dunes."}]}, headers=bearer
    )
    assert replaced.json() == {"ids": ["d0-0"]}
    assert httpx.get(f"{url}/documents/d0-0", headers=key).json()["text"] == "Sand dunes."
    no_id = httpx.put(f"{url}/documents", json={"documents": [{"text": "Sand."}]}, headers=key)
    assert no_id.status_code == 422
    generated = httpx.post(f"{url}/documents", json={"documents": [{"text": "Rocks."}]}, headers=key).json()["ids"]
    assert httpx.get(f"{url}/documents/{generated[0]}", headers=key).json()["text"] == "Rocks."
    for bad in ("", " ", "\u200b"):  # refused as the core refuses them, never given a random id
        refused = httpx.put(f"{url}/documents", json={"documents": [{"id": bad, "text": "x"}]}, headers=key)
        assert refused.status_code == 422, bad
        assert "empty or whitespace" in refused.json()["detail"]
    assert len(retriever) == 19
    odd = ["notes/a.md", "a b?c#d", "../up", "100%"]
    httpx.put(f"{url}/documents", json={"documents": [{"id": i, "text": f"About {i}."} for i in odd]}, headers=key)
    for doc_id in odd:
        by_query = httpx.get(f"{url}/documents", params={"id": doc_id}, headers=key)
        assert by_query.json()["doc_id"] == doc_id
    by_path = httpx.get(f"{url}/documents/notes/a.md", headers=key)
    assert by_path.json()["doc_id"] == "notes/a.md"
    assert httpx.get(f"{url}/documents/notes%2Fa.md", headers=key).json()["doc_id"] == "notes/a.md"
    retriever.delete(odd)
    deleted = httpx.post(f"{url}/documents/delete", json={"ids": ["d0-0", "d0-1"]}, headers=key)
    assert deleted.json() == {"deleted": 2}
    assert httpx.get(f"{url}/documents/d0-0", headers=key).status_code == 404
    assert len(retriever) == 17


def test_serving_beyond_this_machine_needs_a_key(example_retriever: ColBERT, capsys) -> None:
    from colbert_retriever.cli import main

    folder = str(example_retriever.index.path)  # type: ignore[attr-defined]
    assert main(["serve", "--index", folder, "--host", "0.0.0.0", "--port", "1"]) != 0
    error = capsys.readouterr().err.strip()
    assert "--service-key" in error
    assert "--no-key" in error
    assert len(error.splitlines()) == 1


def test_service_settings_are_checked() -> None:
    with pytest.raises(ConfigError, match="max_k must be a positive integer"):
        ServiceConfig(max_k=0)
    with pytest.raises(ConfigError, match="api_key must not be empty"):
        ServiceConfig(api_key="")
    assert "s3cret" not in repr(ServiceConfig(api_key="s3cret"))


def test_the_serve_command_runs_a_server(example_retriever: ColBERT) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    folder = str(example_retriever.index.path)  # type: ignore[attr-defined]
    command = [sys.executable, "-m", "colbert_retriever", "serve", "--index", folder, "--port", str(port)]
    command += ["--max-query-chars", "50"]
    server = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = httpx.get(f"http://127.0.0.1:{port}/health")
                break
            except httpx.TransportError:
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert health.json()["documents"] == 20
        hits = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "Who wrote Hamlet?", "k": 1}).json()
        assert hits["hits"][0]["doc_id"] == "shakespeare"
        too_long = httpx.post(f"http://127.0.0.1:{port}/search", json={"query": "Hamlet? " * 10, "k": 1})
        assert too_long.status_code == 422
        document = {"documents": [{"id": "served", "text": "A write through the served index."}]}
        assert httpx.put(f"http://127.0.0.1:{port}/documents", json=document, timeout=60).status_code == 200
        assert httpx.post(f"http://127.0.0.1:{port}/documents/delete", json={"ids": ["served"]}).status_code == 200
    finally:
        server.terminate()
        server.wait(timeout=30)
    log = server.stderr.read() if server.stderr else ""
    assert "serving" in log
    assert "Indexing" not in log  # no progress bars in a server's log
