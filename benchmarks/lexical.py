"""Lexical engines for a hybrid side index: SQLite FTS5 against bm25s, on BEIR collections.

Usage: python benchmarks/lexical.py [--data ../shared/data] [--collections scifact nfcorpus_preprocessed]

Indexes each collection's corpus (title and text, as the CLI does) with SQLite FTS5 (the
standard library's sqlite3, BM25 ranking, porter stemmer), with bm25s (PyStemmer's
English stemmer, English stop words) and with the library's own side index (inverted lists
in numpy, stores/folder/lexical.py, scored by colbert_retriever/bm25.py with the statistics
of the whole index, split into segments of 1,024 documents as small writes leave it: the
scores are those of one segment), then answers the test queries at k=100. Prints build time,
size, ms per query, nDCG@10 and Recall@100 per engine. Asserts nothing. Needs the `bm25s`
package (not a dependency of colbert-retriever).
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from colbert_retriever import DocumentBatch, Index
from colbert_retriever.metrics import evaluate
from colbert_retriever.text.corpus import read_corpus, read_qrels, read_queries

_WORD = re.compile(r"\w+")


def fts5(ids: list[str], texts: list[str], queries: list[str], folder: Path) -> tuple[list[list[str]], dict]:
    path = folder / "fts.sqlite"
    start = time.perf_counter()
    db = sqlite3.connect(path)
    db.execute("CREATE VIRTUAL TABLE docs USING fts5(text, tokenize='porter unicode61')")
    db.executemany("INSERT INTO docs(rowid, text) VALUES (?, ?)", enumerate(texts))
    db.commit()
    built = time.perf_counter() - start
    start = time.perf_counter()
    runs = []
    for query in queries:
        terms = " OR ".join(f'"{w}"' for w in _WORD.findall(query.lower()))
        rows = db.execute("SELECT rowid FROM docs WHERE docs MATCH ? ORDER BY bm25(docs) LIMIT 100", (terms,))
        runs.append([ids[r] for (r,) in rows])
    searched = time.perf_counter() - start
    db.close()
    return runs, {"build s": built, "MB": path.stat().st_size / 1e6, "ms/query": 1e3 * searched / len(queries)}


def bm25s_engine(ids: list[str], texts: list[str], queries: list[str], folder: Path) -> tuple[list[list[str]], dict]:
    import bm25s
    import Stemmer

    stemmer = Stemmer.Stemmer("english")
    start = time.perf_counter()
    retriever = bm25s.BM25()
    retriever.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    built = time.perf_counter() - start
    retriever.save(folder / "bm25s")
    size = sum(f.stat().st_size for f in (folder / "bm25s").iterdir())
    start = time.perf_counter()
    tokens = bm25s.tokenize(queries, stopwords="en", stemmer=stemmer, show_progress=False)
    found, _ = retriever.retrieve(tokens, k=100, show_progress=False, n_threads=1)
    searched = time.perf_counter() - start
    return [[ids[i] for i in row] for row in found.tolist()], {
        "build s": built,
        "MB": size / 1e6,
        "ms/query": 1e3 * searched / len(queries),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--collections", nargs="+", default=["scifact", "nfcorpus_preprocessed", "scifact_long"])
    args = parser.parse_args()
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads (SQLite: 1)")
    print("| collection | engine | nDCG@10 | Recall@100 | build s | MB | ms/query |\n|---|---|---|---|---|---|---|")
    for name in args.collections:
        data = args.data / name
        docs = list(read_corpus(data / "corpus.jsonl"))
        ids, texts = [d.doc_id for d in docs], [d.text for d in docs]
        qrels = read_qrels(data / "qrels" / "test.tsv")
        qids, queries = read_queries(data / "queries.jsonl")
        kept = [(q, t) for q, t in zip(qids, queries, strict=True) if q in qrels]
        for engine, run_engine in (("sqlite fts5", fts5), ("bm25s", bm25s_engine), ("colbert-retriever", library)):
            with tempfile.TemporaryDirectory() as folder:
                runs, cost = run_engine(ids, texts, [t for _, t in kept], Path(folder))
            scores = evaluate({q: run for (q, _), run in zip(kept, runs, strict=True)}, qrels)
            print(
                f"| {name} | {engine} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | "
                f"{cost['build s']:.2f} | {cost['MB']:.1f} | {cost['ms/query']:.2f} |"
            )


def library(ids: list[str], texts: list[str], queries: list[str], folder: Path) -> tuple[list[list[str]], dict]:
    """The library's side index in an index folder of 1,024-document segments (one
    placeholder token vector a document: only the lexical side is searched)."""
    index = Index.create(folder / "idx", model={"name": "none", "digest": "none", "layout": {}, "dim": 8}, dim=8)
    start = time.perf_counter()
    token = np.ones((1, 8), dtype=np.float32) / np.sqrt(8)
    chunks = [(ids[i : i + 1024], texts[i : i + 1024]) for i in range(0, len(ids), 1024)]
    index.write(DocumentBatch(some, written, [{}] * len(some), [token] * len(some)) for some, written in chunks)
    built = time.perf_counter() - start
    size = sum(f.stat().st_size for f in (folder / "idx" / "segments").rglob("lexical_*.npy"))
    start = time.perf_counter()
    hits = index.search([token] * len(queries), k=100, mode="lexical", texts=queries)
    searched = time.perf_counter() - start
    return [[h.doc_id for h in found] for found in hits], {
        "build s": built,
        "MB": size / 1e6,
        "ms/query": 1e3 * searched / len(queries),
    }


if __name__ == "__main__":
    main()
