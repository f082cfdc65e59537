"""Retrieval metrics for BEIR-style test collections (binary or graded qrels)."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence


def ndcg_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """nDCG@k with linear gains (rel / log2(rank + 1)), as BEIR's pytrec_eval computes it.

    >>> round(ndcg_at_k(["a", "b"], {"b": 1}, k=10), 4)  # 1/log2(3) over ideal 1
    0.6309
    """
    dcg = sum(relevant.get(doc, 0) / math.log2(rank + 2) for rank, doc in enumerate(ranked[:k]))
    ideal = sorted((g for g in relevant.values() if g > 0), reverse=True)[:k]
    idcg = sum(g / math.log2(rank + 2) for rank, g in enumerate(ideal))
    return dcg / idcg if idcg > 0 else 0.0


def recall_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 100) -> float:
    """Share of the relevant documents found in the top k.

    >>> recall_at_k(["a", "b", "c"], {"a": 1, "z": 1}, k=3)
    0.5
    """
    positives = {doc for doc, grade in relevant.items() if grade > 0}
    return len(positives & set(ranked[:k])) / len(positives) if positives else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: Mapping[str, int], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document in the top k (0 if none).

    >>> mrr_at_k(["a", "b", "c"], {"c": 1}, k=10)
    0.3333333333333333
    """
    for rank, doc in enumerate(ranked[:k], start=1):
        if relevant.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def evaluate(run: Mapping[str, Sequence[str]], qrels: Mapping[str, Mapping[str, int]]) -> dict[str, float]:
    """Mean nDCG@10, Recall@100 and MRR@10 over the queries that have qrels."""
    qids = [q for q in qrels if any(g > 0 for g in qrels[q].values())]
    if not qids:
        return {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0, "queries": 0}
    totals = {"ndcg@10": 0.0, "recall@100": 0.0, "mrr@10": 0.0}
    for qid in qids:
        ranked = run.get(qid, [])
        totals["ndcg@10"] += ndcg_at_k(ranked, qrels[qid], 10)
        totals["recall@100"] += recall_at_k(ranked, qrels[qid], 100)
        totals["mrr@10"] += mrr_at_k(ranked, qrels[qid], 10)
    return {**{name: value / len(qids) for name, value in totals.items()}, "queries": len(qids)}
