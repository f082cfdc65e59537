"""Write histories against one bulk write: what many small writes cost, and what searching
the index they leave costs (no encoder: encoding is the same work either way).

Usage: python benchmarks/incremental.py [--docs 10000] [--per-call 1 10 100] [--sets scifact synthetic]
                                        [--data ../shared/data] [--index-type auto] [--queries 30]

For each set of texts (SciFact's abstracts, repeated as needed, or synthetic words drawn by a
Zipf law) `--docs` documents get random unit token vectors (dim 128, as many tokens as the
model would give their text, at most 180) and are written to a new index in one bulk write,
then again `--per-call` documents a write. For each history it prints the median and 99th
percentile write latency, the write amplification (bytes the process wrote, by
/proc/self/io, over the bytes the index holds at the end), the segments left, the file
descriptors a freshly opened handle holds after a search, the median time to open the index,
and the median late and hybrid search latency at k=10. Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

from colbert_retriever import DocumentBatch, Index

DIM = 128
MODEL = {"name": "random", "format": "benchmark", "dim": DIM, "digest": "random", "layout": {}}


def texts_of(name: str, n: int, data: Path, rng: np.random.Generator) -> list[str]:
    if name == "scifact":
        lines = (data / "scifact" / "corpus.jsonl").read_text(encoding="utf-8").splitlines()
        docs = [json.loads(line) for line in lines]
        return [f"{docs[i % len(docs)]['title']}. {docs[i % len(docs)]['text']}" for i in range(n)]
    vocabulary = [f"w{i}" for i in range(20_000)]
    ranks = np.minimum(rng.zipf(1.3, size=(n, 120)), len(vocabulary)) - 1
    return [" ".join(vocabulary[r] for r in row[: rng.integers(20, 120)]) for row in ranks]


def vectors_for(text: str, rng: np.random.Generator) -> np.ndarray:
    n_tokens = min(180, 2 + int(1.3 * len(text.split())))
    x = rng.standard_normal((n_tokens, DIM)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def batches(texts: list[str], per_call: int, seed: int) -> Iterator[DocumentBatch]:
    rng = np.random.default_rng(seed)  # the same vectors for every history
    for start in range(0, len(texts), per_call):
        chunk = texts[start : start + per_call]
        ids = [f"d{start + i}" for i in range(len(chunk))]
        yield DocumentBatch(ids, chunk, [{} for _ in chunk], [vectors_for(t, rng) for t in chunk])


def written_bytes() -> int:
    for line in Path("/proc/self/io").read_text().splitlines():
        if line.startswith("wchar:"):
            return int(line.split()[1])
    return 0


def folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd")) if Path("/proc/self/fd").is_dir() else -1


def measure(path: Path, texts: list[str], per_call: int, index_type: str, queries: list[tuple]) -> dict:
    index = Index.create(path, model=MODEL, dim=DIM, index_type=index_type)  # type: ignore[arg-type]
    latencies = []
    before = written_bytes()
    for batch in batches(texts, per_call, seed=0):
        start = time.perf_counter()
        index.write([batch])
        latencies.append(time.perf_counter() - start)
    amplification = (written_bytes() - before) / folder_bytes(path)
    del index
    opens = []
    for _ in range(5):
        start = time.perf_counter()
        Index.open(path)
        opens.append(time.perf_counter() - start)
    fds = open_descriptors()
    fresh = Index.open(path)
    fresh.search([queries[0][0]], k=10, mode="hybrid", texts=[queries[0][1]])
    fds = open_descriptors() - fds
    timings = {}
    for mode in ("late", "hybrid"):
        times = []
        for vectors, text in queries:
            start = time.perf_counter()
            fresh.search([vectors], k=10, mode=mode, texts=[text])  # type: ignore[arg-type]
            times.append(time.perf_counter() - start)
        timings[mode] = statistics.median(times)
    info = fresh.info()
    return {
        "per call": "bulk" if per_call >= len(texts) else per_call,
        "writes": len(latencies),
        "p50 write ms": 1000 * statistics.median(latencies),
        "p99 write ms": 1000 * float(np.percentile(latencies, 99)),
        "write ampl.": amplification,
        "segments": info.segments,
        "type": info.index_type,
        "fds": fds,
        "open ms": 1000 * statistics.median(opens),
        "late ms": 1000 * timings["late"],
        "hybrid ms": 1000 * timings["hybrid"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--docs", type=int, default=10_000)
    parser.add_argument("--per-call", type=int, nargs="+", default=[100, 10, 1])
    parser.add_argument("--sets", nargs="+", default=["scifact", "synthetic"], choices=["scifact", "synthetic"])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--index-type", default="auto", choices=["auto", "exact", "plaid"])
    parser.add_argument("--queries", type=int, default=30)
    args = parser.parse_args()
    print("CPU capability:", torch.backends.cpu.get_cpu_capability(), "| threads:", torch.get_num_threads())
    rng = np.random.default_rng(1)
    for name in args.sets:
        texts = texts_of(name, args.docs, args.data, rng)
        picked = texts[:: max(1, len(texts) // args.queries)][: args.queries]
        queries = [(vectors_for(" ".join(t.split()[:8]), rng), " ".join(t.split()[:8])) for t in picked]
        print(f"\n{name}: {args.docs} documents, index_type={args.index_type}")
        rows = []
        for per_call in [args.docs, *args.per_call]:
            with tempfile.TemporaryDirectory() as tmp:
                rows.append(measure(Path(tmp) / "idx", texts, per_call, args.index_type, queries))
            cells = (f"{k} {v:.1f}" if isinstance(v, float) else f"{k} {v}" for k, v in rows[-1].items())
            print(" | ".join(cells), flush=True)
        bulk = rows[0]
        for row in rows[1:]:
            print(
                f"per call {row['per call']}: open {row['open ms'] / bulk['open ms']:.2f}x bulk, "
                f"hybrid {row['hybrid ms'] / bulk['hybrid ms']:.2f}x, late {row['late ms'] / bulk['late ms']:.2f}x"
            )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
