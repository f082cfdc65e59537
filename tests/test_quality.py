"""Retrieval quality on a real test collection, end to end through the CLI.

Zero-shot late interaction with all-MiniLM-L6-v2 token states and exact MaxSim reaches
nDCG@10 of about 0.70 on SciFact (the same model's dense embedding: about 0.645); the
compressed (PLAID) index must lose no more than 0.005 of it on the same vectors; fused with
BM25 (hybrid, the default) it must reach 0.72.

SciFact's 5,183 abstracts are encoded once, in float32 (half precision is emulated, and
5x slower, on CPUs without AVX-512 BF16 or AMX): ~6 minutes on 2 AVX2 cores.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import ColBERT, DocumentBatch, Encoder, Index
from colbert_retriever.cli import main
from colbert_retriever.metrics import evaluate
from colbert_retriever.text.corpus import read_jsonl, read_qrels

pytestmark = [pytest.mark.shared_data, pytest.mark.real_model]


@pytest.fixture(scope="module")
def scifact_index(shared: Path, minilm_path: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(SciFact's folder, an exact index of it built by the CLI in float32)."""
    data = shared / "data" / "scifact"
    index = tmp_path_factory.mktemp("scifact") / "exact"
    argv = ["index", "--model", str(minilm_path), "--input", str(data / "corpus.jsonl"), "--index", str(index)]
    assert main([*argv, "--index-type", "exact", "--precision", "float32", "-q"]) == 0
    return data, index


def test_scifact_exact_search_reaches_reference_quality(
    scifact_index: tuple[Path, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    """Late interaction alone, BM25 alone and both fused (the default): hybrid must reach
    0.72 (above the ColBERTv2 paper's 0.693 with a trained model) and lose to neither side."""
    data, index = scifact_index
    scores = {}
    for mode in ("late", "lexical", "hybrid"):
        capsys.readouterr()
        argv = ["eval", "--index", str(index), "--queries", str(data / "queries.jsonl"), "--mode", mode]
        assert main([*argv, "--qrels", str(data / "qrels" / "test.tsv"), "--json", "-q"]) == 0
        scores[mode] = json.loads(capsys.readouterr().out)
    print(scores)
    assert scores["late"]["queries"] == 300
    assert scores["late"]["ndcg@10"] >= 0.70
    assert scores["late"]["recall@100"] >= 0.90
    assert scores["hybrid"]["ndcg@10"] >= 0.72
    assert scores["hybrid"]["ndcg@10"] >= max(scores["late"]["ndcg@10"], scores["lexical"]["ndcg@10"]) - 0.01


def test_trial_registration_numbers_are_found_by_hybrid_search(shared: Path, minilm_path: Path, tmp_path: Path) -> None:
    """An id-like token (a trial registration number appended to each of 60 abstracts) is
    what late interaction alone often misses and BM25 finds."""
    lines = (shared / "data" / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()[:60]
    docs = [json.loads(line) for line in lines]
    rng = np.random.default_rng(1)
    numbers = [f"NCT0{rng.integers(1_000_000, 10_000_000)}" for _ in docs]
    retriever = ColBERT.create(tmp_path / "idx", model=minilm_path, precision="float32", show_progress=False)
    texts = [f"{d['title']}. {d['text']} Trial registration: {n}." for d, n in zip(docs, numbers, strict=True)]
    retriever.add(texts, ids=[str(d["_id"]) for d in docs])
    ranks: dict[str, list[int]] = {"late": [], "hybrid": [], "lexical": []}
    for doc, number in zip(docs, numbers, strict=True):
        for mode, found in ranks.items():
            ids = [h.doc_id for h in retriever.search(number, k=60, mode=mode)]  # type: ignore[arg-type]
            found.append(ids.index(str(doc["_id"])) + 1 if str(doc["_id"]) in ids else 61)
    print(ranks)  # measured: late finds 28 of 60 in its top 10, hybrid 55 (19 first), lexical all first
    rescued = sum(late > 10 >= hybrid for late, hybrid in zip(ranks["late"], ranks["hybrid"], strict=True))
    assert rescued >= 20  # of the 32 late interaction misses
    assert sum(rank <= 10 for rank in ranks["hybrid"]) >= 50
    assert all(h <= late for h, late in zip(ranks["hybrid"], ranks["late"], strict=True))
    assert ranks["lexical"] == [1] * 60


def test_scifact_plaid_index_keeps_exact_quality(
    scifact_index: tuple[Path, Path], minilm_path: Path, tmp_path: Path
) -> None:
    data, path = scifact_index
    exact = Index.open(path)
    batches = []  # the exact index's stored vectors, written again into a PLAID index
    for segment in exact._snapshot.segments:
        assert segment.embeddings is not None
        rows = segment.live_rows.tolist()
        docs = segment.documents.read(rows)
        batches.append(
            DocumentBatch(
                ids=[d.doc_id for d in docs],
                texts=[d.text for d in docs],
                metadata=[d.metadata for d in docs],
                vectors=[np.asarray(segment.embeddings[segment.offsets[r] : segment.offsets[r + 1]]) for r in rows],
                passages=[d.passage for d in docs],
                starts=[d.start for d in docs],
            )
        )
    plaid = Index.create(tmp_path / "plaid", model=exact.model, dim=exact.dim, index_type="plaid")
    plaid.write(batches)
    assert plaid.info().centroids == 4096  # 2**21 / dim 384
    qrels = read_qrels(data / "qrels" / "test.tsv")
    queries = [q for q in read_jsonl(data / "queries.jsonl") if str(q["_id"]) in qrels]
    encoder = Encoder.from_pretrained(minilm_path, show_progress=False)
    query_vectors = encoder.encode_queries([str(q["text"]) for q in queries])
    scores = {}
    for kind, index in (("exact", exact), ("plaid", plaid)):
        found = index.search(query_vectors, k=100)
        run = {str(q["_id"]): [h.doc_id for h in hits] for q, hits in zip(queries, found, strict=True)}
        scores[kind] = evaluate(run, qrels)
    print(scores)
    # measured (bfloat16 vectors): nDCG@10 0.0054 above exact search, Recall@100 0.008 below
    assert scores["plaid"]["ndcg@10"] >= scores["exact"]["ndcg@10"] - 0.005
    assert scores["plaid"]["recall@100"] >= scores["exact"]["recall@100"] - 0.02


def _long_subset(
    shared: Path, folder: Path, n_docs: int
) -> tuple[Path, dict[str, dict[str, int]], list[str], list[str]]:
    """The first `n_docs` documents of scifact_long and the test queries relevant to them."""
    data = shared / "data" / "scifact_long"
    corpus = folder / "corpus.jsonl"
    with (data / "corpus.jsonl").open(encoding="utf-8") as src:
        lines = [next(src) for _ in range(n_docs)]
    corpus.write_text("".join(lines), encoding="utf-8")
    kept = {json.loads(line)["_id"] for line in lines}
    qrels = {q: rel for q, rel in read_qrels(data / "qrels" / "test.tsv").items() if set(rel) & kept}
    queries = [q for q in read_jsonl(data / "queries.jsonl") if str(q["_id"]) in qrels]
    return corpus, qrels, [str(q["_id"]) for q in queries], [str(q["text"]) for q in queries]


def test_long_documents_are_found_by_their_passages(shared: Path, minilm_path: Path, tmp_path: Path) -> None:
    """Regression: a long document was cut at doc_maxlen without a word, so a query about any
    abstract but its first missed it. 40 documents of scifact_long (~2,300 word pieces each)."""
    corpus, qrels, qids, texts = _long_subset(shared, tmp_path, 40)
    scores = {}
    for label, extra in (("passages", []), ("truncated", ["--no-chunking"])):
        index = tmp_path / label
        argv = ["index", "--model", str(minilm_path), "--input", str(corpus), "--index", str(index), "-q"]
        assert main([*argv, "--precision", "float32", *extra]) == 0
        found = ColBERT.open(index, show_progress=False).search_batch(texts, k=10, mode="late")
        scores[label] = evaluate({q: [h.doc_id for h in hits] for q, hits in zip(qids, found, strict=True)}, qrels)
    print(scores)
    assert scores["passages"]["ndcg@10"] >= 0.75
    assert scores["passages"]["ndcg@10"] >= scores["truncated"]["ndcg@10"] + 0.2


@pytest.mark.slow
def test_scifact_long_through_the_cli_with_defaults(
    shared: Path, minilm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The issue's target: the whole of scifact_long, CLI defaults (auto index, passages,
    MaxP): nDCG@10 >= 0.68 (0.150 when documents were cut at doc_maxlen). ~20 min on 2 cores."""
    data = shared / "data" / "scifact_long"
    index = tmp_path / "idx"
    argv = ["index", "--model", str(minilm_path), "--input", str(data / "corpus.jsonl"), "--index", str(index)]
    assert main([*argv, "--precision", "float32", "-q"]) == 0
    capsys.readouterr()
    argv = ["eval", "--index", str(index), "--queries", str(data / "queries.jsonl")]
    assert main([*argv, "--qrels", str(data / "qrels" / "test.tsv"), "--json", "-q"]) == 0
    scores = json.loads(capsys.readouterr().out)
    print(scores)
    assert scores["ndcg@10"] >= 0.68
