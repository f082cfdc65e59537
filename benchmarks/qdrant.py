"""The Qdrant store against our exact and plaid indexes, on qdrant-client's local mode and on
Qdrant Edge (Qdrant's engine, in process), SciFact with the bundled all-MiniLM-L6-v2.

Usage: python benchmarks/qdrant.py --exact DIR [--plaid DIR] [--data ../shared/data/scifact]
                                   [--prefetch 100 200 400 1000] [--edge] [--queries N]

DIR: index folders of the collection built with the bundled model (e.g. `colbert-retriever
index --index-type exact --precision float32`). The Qdrant collections are filled from the
exact index's stored vectors (float16 there, float32 in Qdrant), so the encoder runs once;
upload throughput counts the upload alone. Queries are encoded once for every system; the
latencies are search alone (add the encoding time printed first). For each prefetch vector
(mean, MUVERA FDE) and prefetch size: nDCG@10, Recall@100 at k=100, how much of exact
MaxSim's top 10 it returns, and ms per query. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from colbert_retriever import ColBERT, Index, QdrantConfig
from colbert_retriever.metrics import evaluate
from colbert_retriever.stores.protocol import DocumentBatch
from colbert_retriever.stores.qdrant.edge import EdgeCollection
from colbert_retriever.stores.qdrant.store import QdrantStore
from colbert_retriever.text.corpus import read_qrels, read_queries

K = 100


def batches(index: Index, size: int = 256) -> Iterator[DocumentBatch]:
    """The exact index's rows with their vectors, `size` rows at a time."""
    rows: list[Any] = []
    for doc_id in index.doc_ids():
        rows.extend(index.passages(doc_id))
        if len(rows) >= size:
            yield _batch(rows)
            rows = []
    if rows:
        yield _batch(rows)


def _megabytes(folder: Path) -> int:
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file()) // 1_000_000


def _batch(rows: list[Any]) -> DocumentBatch:
    return DocumentBatch(
        ids=[r.doc_id for r, _ in rows],
        texts=[r.text for r, _ in rows],
        metadata=[r.metadata for r, _ in rows],
        vectors=[v for _, v in rows],
        passages=[r.passage for r, _ in rows],
        starts=[r.start for r, _ in rows],
    )


def measure(
    name: str,
    search: Callable[[np.ndarray, str], list[str]],
    vectors: Sequence[np.ndarray],
    texts: Sequence[str],
    qids: Sequence[str],
    qrels: dict[str, dict[str, int]],
    reference: dict[str, list[str]] | None,
) -> dict[str, list[str]]:
    start = time.perf_counter()
    run = {qid: search(q, text) for qid, q, text in zip(qids, vectors, texts, strict=True)}
    ms = (time.perf_counter() - start) * 1000 / len(qids)
    scores = evaluate(run, qrels)
    top10 = np.mean([len(set(run[q][:10]) & set(reference[q][:10])) / 10 for q in qids]) if reference else 1.0
    print(
        f"| {name} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | {top10:.3f} | {ms:.1f} |",
        flush=True,
    )
    return run


def filled(index: Index, config: QdrantConfig) -> tuple[QdrantStore, float, float]:
    """A Qdrant store filled with the index's rows; the seconds to upload them and (Edge) to
    build its HNSW graph."""
    store = QdrantStore.create(config, model=index.model, dim=index.dim)
    start = time.perf_counter()
    store.write(batches(index))
    upload = time.perf_counter() - start
    start = time.perf_counter()
    if isinstance(store.collection, EdgeCollection):
        store.collection.optimize()
    return store, upload, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--exact", type=Path, required=True, help="an exact index folder of the collection")
    parser.add_argument("--plaid", type=Path, help="a plaid index folder of the same collection")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared/data/scifact")
    parser.add_argument("--prefetch", type=int, nargs="+", default=[100, 200, 400, 1000])
    parser.add_argument("--kinds", nargs="+", default=["mean", "fde"])
    parser.add_argument("--edge", action="store_true", help="also Qdrant Edge (pip install qdrant-edge-py)")
    parser.add_argument("--queries", type=int, help="only the first N test queries")
    parser.add_argument("--reference", type=Path, help="a JSON file caching the exact index's results")
    parser.add_argument("--local-queries", type=int, default=30, help="queries for local mode (0: skip it)")
    args = parser.parse_args()
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, threads: {torch.get_num_threads()}")

    qrels = read_qrels(args.data / "qrels" / "test.tsv")
    ids, all_texts = read_queries(args.data / "queries.jsonl")
    chosen = [i for i, qid in enumerate(ids) if qid in qrels][: args.queries]
    qids, texts = [ids[i] for i in chosen], [all_texts[i] for i in chosen]
    qrels = {qid: qrels[qid] for qid in qids}
    exact = ColBERT.open(args.exact, show_progress=False)
    start = time.perf_counter()
    vectors = [exact.encoder.encode_queries([t])[0] for t in texts]
    print(
        f"{len(qids)} queries encoded one at a time in {(time.perf_counter() - start) * 1000 / len(qids):.1f} ms each"
    )
    index = exact.index
    assert isinstance(index, Index)
    print(f"{len(index)} documents, {index.n_passages} passages, {index.n_tokens} tokens, dim {index.dim}\n")
    print("| system | nDCG@10 | Recall@100 | exact top-10 found | ms/query (search) |")
    print("|---|---|---|---|---|")

    def ours(store: Any, mode: str = "late") -> Callable[[np.ndarray, str], list[str]]:
        return lambda q, text: [h.doc_id for h in store.search([q], k=K, mode=mode, texts=[text])[0]]

    if args.reference and args.reference.exists():
        reference = json.loads(args.reference.read_text())
        ms = float("nan")
    else:
        start = time.perf_counter()  # exact MaxSim over every token: batched, one pass over the index
        exact_hits = index.search(vectors, k=K, mode="late")
        ms = (time.perf_counter() - start) * 1000 / len(qids)
        reference = {qid: [h.doc_id for h in hits] for qid, hits in zip(qids, exact_hits, strict=True)}
        if args.reference:
            args.reference.write_text(json.dumps(reference))
    scores = evaluate(reference, qrels)
    print(
        f"| ours, exact index, late (batched) | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | 1 | {ms:.1f} |"
    )
    if args.plaid:
        measure("ours, plaid index, late", ours(Index.open(args.plaid)), vectors, texts, qids, qrels, reference)
    for kind in args.kinds if args.edge else ():
        folder = tempfile.mkdtemp(prefix="edge-")
        store, upload, optimize = filled(
            index, QdrantConfig(path=folder, edge=True, prefetch=kind, show_progress=False)
        )
        print(
            f"| Edge, {kind}: upload {upload:.1f} s ({index.n_passages / upload:.0f} points/s, "
            f"{index.n_tokens / upload:.0f} tokens/s), HNSW {optimize:.1f} s, {_megabytes(Path(folder))} MB | | | | |"
        )
        for limit in args.prefetch:
            store.collection.config = replace(store.collection.config, prefetch_min=limit, prefetch_per_hit=1)
            measure(f"Qdrant Edge, {kind}, prefetch {limit}", ours(store), vectors, texts, qids, qrels, reference)
        store.collection.config = replace(store.collection.config, prefetch_min=max(args.prefetch))
        measure(f"Qdrant Edge, {kind}, hybrid", ours(store, "hybrid"), vectors, texts, qids, qrels, reference)
        store.drop()
    if not args.local_queries:
        return
    n = args.local_queries  # local mode is pure Python: a few queries show it gives the same hits
    few, few_qrels = qids[:n], {qid: qrels[qid] for qid in qids[:n]}
    few_reference = {qid: reference[qid] for qid in few}
    print(f"\nqdrant-client local mode, the first {n} queries, default prefetch (200 passages):\n")
    print("| system | nDCG@10 | Recall@100 | exact top-10 found | ms/query (search) |")
    print("|---|---|---|---|---|")
    exact_few = {qid: reference[qid] for qid in few}
    scores = evaluate(exact_few, few_qrels)
    print(f"| ours, exact index, late | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | 1 | |")
    measure("ours, exact index, hybrid", ours(index, "hybrid"), vectors[:n], texts[:n], few, few_qrels, few_reference)
    store, upload, _ = filled(index, QdrantConfig(path=":memory:", show_progress=False))
    print(
        f"| local mode: uploaded {index.n_passages} points ({index.n_tokens} tokens) in {upload:.1f} s, "
        f"{index.n_passages / upload:.0f} points/s | | | | |"
    )
    for mode in ("late", "hybrid"):
        measure(f"Qdrant local, {mode}", ours(store, mode), vectors[:n], texts[:n], few, few_qrels, few_reference)
    store.close()


if __name__ == "__main__":
    main()
