"""Where the time of one PLAID search goes: query encoding, each PLAID stage, result building.

Usage: python benchmarks/profile_plaid.py --index IDX --collection ../shared/data/scifact
                                          [-k 100] [--scoring-dtype auto float16] [--mode late]

Runs the collection's test queries one at a time through `ColBERT.search` on an existing
plaid index (e.g. `colbert-retriever index ... --index-type plaid --nbits 2`), timing each
stage by wrapping the functions that do it, once per `--scoring-dtype`. Prints ms per query
and share per stage, and nDCG@10; asserts nothing.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

import colbert_retriever.pipeline.search as pipeline
import colbert_retriever.retriever as front_door
import colbert_retriever.stores.folder.plaid as plaid
import colbert_retriever.stores.folder.reader as reader
from colbert_retriever import ColBERT, SearchConfig
from colbert_retriever.metrics import evaluate
from colbert_retriever.text.corpus import read_qrels, read_queries

# (module, function, stage): stage 1 (query x centroids) runs inline in plaid_search and is
# what remains of it once the wrapped stages are taken out.
STAGES = [
    (plaid, "_candidates", "2a candidate cells + centroid interaction"),
    (plaid, "_full_interaction", "2b centroid interaction, all tokens"),
    (plaid, "_rerank", "3 exact rerank (decompression)"),
    (pipeline, "_hits", "result building (documents read)"),
]


def wrap(totals: dict[str, float], module: Any, name: str, stage: str) -> Callable[[], None]:
    """Add each call's time of `module.name` to totals[stage]; return the undo."""
    original = getattr(module, name)

    def timed(*args: Any, **kwargs: Any) -> Any:
        start = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            totals[stage] += time.perf_counter() - start

    setattr(module, name, timed)
    return lambda: setattr(module, name, original)


def profile(
    index: Path, qids: list[str], texts: list[str], k: int, dtype: str, mode: str
) -> tuple[dict[str, float], float, dict[str, list[str]]]:
    """Per-stage ms per query, ms per query, and the run (for nDCG)."""
    retriever = ColBERT.open(index, show_progress=False, search_config=SearchConfig(scoring_dtype=dtype))  # type: ignore[arg-type]
    retriever.search(texts[0], k=k, mode=mode)  # warm the page cache and the code paths
    totals: dict[str, float] = defaultdict(float)
    undo = [wrap(totals, module, name, stage) for module, name, stage in STAGES]
    undo.append(wrap(totals, reader, "plaid_search", "plaid_search"))  # the reader's own reference
    undo.append(wrap(totals, front_door, "search", "dispatch"))  # the pipeline, as the front door calls it
    undo.append(wrap(totals, retriever.encoder, "encode_queries", "query encoding"))
    run = {}
    start = time.perf_counter()
    try:
        for qid, text in zip(qids, texts, strict=True):
            run[qid] = [hit.doc_id for hit in retriever.search(text, k=k, mode=mode)]
    finally:
        for step in undo:
            step()
    wall = time.perf_counter() - start
    stage_1 = totals["plaid_search"] - sum(totals[stage] for _, name, stage in STAGES if name != "_hits")
    figures = {
        "query encoding": totals["query encoding"],
        "1 query x centroids (+ loop)": stage_1,
        **{stage: totals[stage] for _, _, stage in STAGES},
        "allowed masks, BM25 (hybrid)": totals["dispatch"] - totals["plaid_search"] - totals[STAGES[-1][2]],
        "checks, other": wall - totals["query encoding"] - totals["dispatch"],
    }
    return {name: 1000 * seconds / len(texts) for name, seconds in figures.items()}, 1000 * wall / len(texts), run


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", required=True, type=Path)
    parser.add_argument("--collection", required=True, type=Path, help="BEIR folder: queries.jsonl, qrels/test.tsv")
    parser.add_argument("-k", type=int, default=100)
    parser.add_argument(
        "--scoring-dtype", nargs="+", default=["auto", "float16"], choices=["auto", "float16", "float32"]
    )
    parser.add_argument("--mode", default="late", choices=["late", "hybrid"], help="late (default) or hybrid")
    args = parser.parse_args()
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads", flush=True)
    qrels = read_qrels(args.collection / "qrels" / "test.tsv")
    ids, all_texts = read_queries(args.collection / "queries.jsonl")
    judged = [i for i, qid in enumerate(ids) if qid in qrels]
    qids, texts = [ids[i] for i in judged], [all_texts[i] for i in judged]
    for dtype in args.scoring_dtype:
        per_stage, per_query, run = profile(args.index, qids, texts, args.k, dtype, args.mode)
        scores = evaluate(run, qrels)
        print(
            f"\n{args.mode}, scoring_dtype={dtype}: {len(texts)} queries, k={args.k}, {per_query:.1f} ms a query, "
            f"nDCG@10 {scores['ndcg@10']:.4f}"
        )
        for stage, ms in per_stage.items():
            print(f"  {stage:<42} {ms:7.2f} ms  {100 * ms / per_query:5.1f}%")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
