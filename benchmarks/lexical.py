"""Lexical engines for a hybrid side index: SQLite FTS5 against bm25s, on BEIR collections.

Usage: python benchmarks/lexical.py [--data ../shared/data] [--collections scifact nfcorpus_preprocessed]

Indexes each collection's corpus (title and text, as the CLI does) with SQLite FTS5 (the
standard library's sqlite3, BM25 ranking, porter stemmer) and with bm25s (PyStemmer's
English stemmer, English stop words), then answers the test queries at k=100. Prints build
time, size, ms per query, nDCG@10 and Recall@100 per engine. Then the side index as the
library stores it (stores/folder/lexical.py: one FTS5 file per segment, BM25 statistics per
segment) over the whole corpus in one segment and split into segments of 1,024 and 256
documents, results merged by score. Asserts nothing. Needs the `bm25s` and `PyStemmer`
packages (not dependencies of colbert-retriever).
"""

from __future__ import annotations

import argparse
import re
import sqlite3
import tempfile
import time
from pathlib import Path

import torch

from colbert_retriever.metrics import evaluate
from colbert_retriever.stores.folder.lexical import LexicalTable, match_expression, write_lexical
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
        for engine, run_engine in (("sqlite fts5", fts5), ("bm25s", bm25s_engine)):
            with tempfile.TemporaryDirectory() as folder:
                runs, cost = run_engine(ids, texts, [t for _, t in kept], Path(folder))
            scores = evaluate({q: run for (q, _), run in zip(kept, runs, strict=True)}, qrels)
            print(
                f"| {name} | {engine} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} | "
                f"{cost['build s']:.2f} | {cost['MB']:.1f} | {cost['ms/query']:.2f} |"
            )
        for size in (len(ids), 1024, 256):
            with tempfile.TemporaryDirectory() as folder:
                runs = per_segment(ids, texts, [t for _, t in kept], Path(folder), size)
            scores = evaluate({q: run for (q, _), run in zip(kept, runs, strict=True)}, qrels)
            print(f"| {name} | side index, segments of {size} | {scores['ndcg@10']:.4f} | {scores['recall@100']:.4f} |")


def per_segment(ids: list[str], texts: list[str], queries: list[str], folder: Path, size: int) -> list[list[str]]:
    """The library's side index over segments of `size` documents: top 100 merged by score."""
    segments = []
    for start in range(0, len(ids), size):
        write_lexical(folder / f"{start}.sqlite", texts[start : start + size])
        segments.append((LexicalTable(folder / f"{start}.sqlite"), ids[start : start + size]))
    runs = []
    for query in queries:
        expression = match_expression(query) or '""'
        found: list[tuple[float, str]] = []
        for table, segment_ids in segments:
            rows, scores = table.match(expression)
            found += [(s, segment_ids[r]) for r, s in zip(rows.tolist(), scores.tolist(), strict=True)]
        runs.append([doc_id for _, doc_id in sorted(found, reverse=True)[:100]])
    return runs


if __name__ == "__main__":
    main()
