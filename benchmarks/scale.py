"""PLAID index against exact search on synthetic token vectors at growing sizes (no encoder).

Usage: python benchmarks/scale.py [--n-docs 10000 100000 1000000] [--queries 20] [--nbits 2]
                                  [--kinds plaid exact] [--keep DIR]

Passages of ~60 tokens (dim 128) come in topics of 10: three quarters of a passage's tokens
are unit vectors near its topic's 8 centres, a quarter near common centres (a Zipf law over
all 50,000, like frequent words). A query draws 24 tokens from a topic's centres and 8 common
ones, so each query has a clear top-10 (its topic's passages) above many near-misses that
share centres with it: recall@10 measures whether the compressed index finds that set, not
how it orders exact ties. Each passage has a text of ~40 words and metadata
{"topic", "year", "lang", "tags"}. For each size N the script builds a PLAID and an exact
index from the same vectors (regenerated from the seed, so nothing is held in memory) and
prints build time, peak memory, bytes per token, the time to open the index and the memory
it holds once open (both in a fresh process), search latency, recall@10 of PLAID against
exact search, and what a filter costs: evaluating it over every document (cold, then warm),
and the search latency with it against without (5 queries), for a selective filter (~0.4% of passages
pass) and a broad one (~80%); then how each figure grows with N. Exact search of a million
passages takes about a minute a query on 2 cores, so above 200,000 passages 5 queries are timed
(2 with filters). Needs ~16 GB of free disk per million passages for the exact index; with
--keep the indexes stay in DIR/N/KIND and a later run measures them again without rebuilding.
Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

DIM, MEAN_TOKENS, N_CENTRES, CHUNK, TOPIC_SIZE = 128, 60, 50_000, 1024, 10
WORDS = ["the", "a", "of", "retrieval", "passage", "token", "vector", "index", "late", "interaction", "query"]
LANGS = ["en"] * 5 + ["de", "fr", "es", "it", "nl"]
SELECTIVE = {"year": {"$gte": 2000, "$lt": 2004}, "lang": {"$in": ["de", "fr"]}, "tags": {"$contains": "t3"}}  # 0.4%
BROAD = {"lang": {"$nin": ["de", "fr"]}, "year": {"$gte": 1990}}  # 80% pass


def passages(n_docs: int, seed: int) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first passage number, (n_tokens, DIM) float16 vectors, (n_passages + 1,) offsets) per chunk."""
    centres = _centres(seed)
    for first in range(0, n_docs, CHUNK):
        yield first, *_chunk(centres, first, min(CHUNK, n_docs - first), seed)


def _chunk(centres: np.ndarray, first: int, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng([seed, first])  # each chunk from its own seed: any one can be regenerated
    lengths = rng.integers(MEAN_TOKENS // 2, MEAN_TOKENS * 3 // 2 + 1, count)
    owner = np.repeat(np.arange(first, first + count), lengths)  # passage of each token
    picks = _topic_centres(owner // TOPIC_SIZE, seed)[np.arange(len(owner)), rng.integers(0, 8, len(owner))]
    common = rng.random(len(owner)) < 0.25
    picks[common] = _common(int(common.sum()), rng)
    return _noisy(centres[picks], seed * 2**32 + int(first)), np.concatenate([[0], np.cumsum(lengths)])


def queries(n_queries: int, n_docs: int, seed: int) -> list[np.ndarray]:
    """Each query: 24 tokens near one topic's centres and 8 near common centres."""
    centres, out = _centres(seed), []
    rng = np.random.default_rng([seed, 1 << 40])
    for topic in rng.choice(n_docs // TOPIC_SIZE, n_queries, replace=False):
        picks = np.concatenate(
            [_topic_centres(np.full(24, topic), seed)[np.arange(24), rng.integers(0, 8, 24)], _common(8, rng)]
        )
        out.append(_noisy(centres[picks], seed * 2**32 + 2**31 + int(topic)).astype(np.float32))
    return out


def _topic_centres(topics: np.ndarray, seed: int) -> np.ndarray:
    """(len(topics), 8) centre ids of each topic: a hash of (seed, topic), so any topic's are known."""
    mixed = (
        topics.astype(np.uint64)[:, None] * np.uint64(0x9E3779B97F4A7C15)
        + np.arange(8, dtype=np.uint64) * np.uint64(0xBF58476D1CE4E5B9)
        + np.uint64(seed)
    )
    mixed ^= mixed >> np.uint64(31)
    mixed *= np.uint64(0x94D049BB133111EB)
    mixed ^= mixed >> np.uint64(29)
    return (mixed % np.uint64(N_CENTRES)).astype(np.int64)


def _common(n: int, rng: np.random.Generator) -> np.ndarray:
    weights = 1.0 / np.arange(1, N_CENTRES + 1)
    return rng.choice(N_CENTRES, size=n, p=weights / weights.sum())


def _centres(seed: int) -> np.ndarray:
    centres = np.random.default_rng(seed).standard_normal((N_CENTRES, DIM)).astype(np.float32)
    return centres / np.linalg.norm(centres, axis=1, keepdims=True)


def _noisy(x: np.ndarray, seed: int) -> np.ndarray:
    """Unit vectors at cosine ~0.8 around `x` (torch draws the noise: 4x numpy's speed)."""
    noise = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    y = torch.nn.functional.normalize(torch.from_numpy(x) + 0.75 / np.sqrt(DIM) * noise, dim=1)
    return y.to(torch.float16).numpy()


def documents(first: int, count: int, seed: int) -> tuple[list[str], list[dict]]:
    """Texts of ~40 words and metadata of passages first..first+count (deterministic)."""
    rng = np.random.default_rng([seed, first, 7])
    words = rng.integers(0, len(WORDS), (count, 40))
    texts = [f"passage {first + i}: " + " ".join(WORDS[w] for w in row) for i, row in enumerate(words.tolist())]
    years = rng.integers(1990, 2025, count).tolist()
    langs = rng.integers(0, len(LANGS), count).tolist()
    tags = rng.integers(0, 10, (count, 2)).tolist()
    metadata = [
        {"topic": (first + i) // TOPIC_SIZE, "year": y, "lang": LANGS[g], "tags": [f"t{a}", f"t{b}"]}
        for i, (y, g, (a, b)) in enumerate(zip(years, langs, tags, strict=True))
    ]
    return texts, metadata


def build(kind: str, path: Path, n_docs: int, nbits: int, seed: int) -> None:
    """Write the synthetic corpus into a new index (run in a child process to measure its peak memory)."""
    from colbert_retriever import DocumentBatch, Index, PlaidConfig

    index = Index.create(
        path, model={"name": "synthetic", "dim": DIM}, dim=DIM, index_type=kind, plaid=PlaidConfig(nbits=nbits)
    )

    def batches() -> Iterator[DocumentBatch]:
        for first, vectors, offsets in passages(n_docs, seed):
            texts, metadata = documents(first, len(offsets) - 1, seed)
            ids = [str(first + i) for i in range(len(offsets) - 1)]
            yield DocumentBatch(ids=ids, texts=texts, metadata=metadata, vectors=np.split(vectors, offsets[1:-1]))

    index.write(batches())


def _rss_mb() -> float:
    """This process's resident memory now (Linux), in MB."""
    with open("/proc/self/status", encoding="ascii") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS")) / 1024


def open_cold(path: Path) -> dict[str, float]:
    """Open an index in this (fresh) process: seconds, and the memory the open added."""
    from colbert_retriever import Index

    before = _rss_mb()
    start = time.perf_counter()
    index = Index.open(path)
    seconds = time.perf_counter() - start
    return {"open s": seconds, "RSS after open MB": _rss_mb() - before, "documents": len(index)}


def filter_costs(index: object, qs: list[np.ndarray], label: str) -> dict[str, float]:
    """Evaluating each filter over every document, and searching with it against without."""
    from colbert_retriever.stores.folder.filtering import compile_filter

    figures: dict[str, float] = {}
    segments = index._snapshot.segments  # type: ignore[attr-defined]
    for name, spec in (("selective", SELECTIVE), ("broad", BROAD)):
        for run in ("cold", "warm"):
            start = time.perf_counter()
            accept = compile_filter(spec)
            passing = sum(int((accept(seg) & ~seg.deleted).sum()) for seg in segments)
            figures[f"{label} {name} filter {run} ms"] = 1000 * (time.perf_counter() - start)
        figures[f"{label} {name} passing %"] = 100 * passing / len(index)  # type: ignore[arg-type]
        latencies, plain, counts = [], [], []
        for q in qs:
            t0 = time.perf_counter()
            counts.append(len(index.search([q], k=10, filters=spec)[0]))  # type: ignore[attr-defined]
            t1 = time.perf_counter()
            index.search([q], k=10)  # type: ignore[attr-defined]
            latencies.append(1000 * (t1 - t0))
            plain.append(1000 * (time.perf_counter() - t1))
        figures[f"{label} {name} search ms, filtered"] = float(np.median(latencies))
        figures[f"{label} {name} search ms, unfiltered"] = float(np.median(plain))
        figures[f"{label} {name} hits per query (k=10)"] = float(np.mean(counts))
    return figures


def measure(n_docs: int, n_queries: int, nbits: int, seed: int, root: Path, kinds: list[str]) -> dict[str, float]:
    """Build (unless `root` already holds it) and measure each kind of index of `n_docs` passages."""
    from colbert_retriever import Index

    figures: dict[str, float] = {}
    for kind in kinds:
        if not (root / kind / "manifest.json").exists():
            start = time.perf_counter()
            child = _child("--build", kind, str(root / kind), str(n_docs), str(nbits), str(seed))
            figures[f"{kind} build s"] = time.perf_counter() - start
            figures[f"{kind} peak GB"] = float(child.split()[-1]) / 2**20
        opened = json.loads(_child("--open", str(root / kind)).splitlines()[-1])
        figures[f"{kind} open s"] = opened["open s"]
        figures[f"{kind} RSS after open MB"] = opened["RSS after open MB"]
    # Exact search of a million passages takes a minute a query here: fewer queries at that size.
    large = n_docs > 200_000 and "exact" in kinds
    qs = queries(5 if large else n_queries, n_docs, seed)
    found = {}
    for kind in kinds:
        index = Index.open(root / kind)
        info = index.info()
        figures["tokens"] = info.tokens
        figures[f"{kind} B/token"] = info.bytes / info.tokens
        index.search(qs[:1], k=10)  # warm the page cache and the code paths
        latencies, found[kind] = [], []
        for q in qs:
            t0 = time.perf_counter()
            found[kind].append({h.doc_id for h in index.search([q], k=10)[0]})
            latencies.append(1000 * (time.perf_counter() - t0))
        figures[f"{kind} median ms"] = float(np.median(latencies))
        figures[f"{kind} p95 ms"] = float(np.percentile(latencies, 95))
        figures |= filter_costs(index, qs[: 2 if large else 5], kind)
    if len(found) == 2:
        pairs = zip(found["plaid"], found["exact"], strict=True)
        figures["recall@10"] = float(np.mean([len(p & e) / 10 for p, e in pairs]))
        figures["speedup"] = figures["exact median ms"] / figures["plaid median ms"]
    return figures


def _child(*args: str) -> str:
    """Run this script with `args` in a fresh process (its own memory); return its stdout."""
    return subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True, text=True).stdout


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--build":
        kind, path, n_docs, nbits, seed = sys.argv[2:]
        build(kind, Path(path), int(n_docs), int(nbits), int(seed))
        print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)  # KiB
        return 0
    if len(sys.argv) > 1 and sys.argv[1] == "--open":
        print(json.dumps(open_cold(Path(sys.argv[2]))))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-docs", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--nbits", type=int, default=2, choices=[1, 2, 4])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--kinds", nargs="+", default=["plaid", "exact"], choices=["plaid", "exact"])
    parser.add_argument("--tmp", default=os.environ.get("TMPDIR", "/tmp"), help="where the indexes are built")
    parser.add_argument("--keep", help="build into KEEP/N/KIND and keep them; an index already there is measured again")
    args = parser.parse_args()
    import torch

    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {os.cpu_count()} cores", flush=True)
    rows = []
    for n_docs in args.n_docs:
        if args.keep:
            figures = measure(n_docs, args.queries, args.nbits, args.seed, Path(args.keep) / str(n_docs), args.kinds)
        else:
            with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
                figures = measure(n_docs, args.queries, args.nbits, args.seed, Path(tmp), args.kinds)
        rows.append((n_docs, figures))
        print(f"N={n_docs}: " + ", ".join(f"{k} {v:.3g}" for k, v in figures.items()), flush=True)
    keys = list(dict.fromkeys(key for _, figures in rows for key in figures))
    print("\n| figure | " + " | ".join(f"N={n:,}" for n, _ in rows) + " |")
    print("|---|" + "---|" * len(rows))
    for key in keys:
        print(f"| {key} | " + " | ".join(f"{f[key]:,.3g}" if key in f else "" for _, f in rows) + " |")
    if len(rows) > 1:
        print("\ngrowth per 10x N (ratio of consecutive sizes):")
        for key in ("plaid build s", "plaid peak GB", "plaid open s", "plaid median ms", "exact median ms"):
            if not all(key in f for _, f in rows):
                continue
            ratios = [b[1][key] / a[1][key] for a, b in itertools.pairwise(rows)]
            print(f"  {key:<16} " + ", ".join(f"x{r:.2f}" for r in ratios))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
