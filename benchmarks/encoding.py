"""Encoding precisions on this CPU: documents a second, nDCG@10 and memory for each, and the
latency of one query end to end (tokenise, encode, search).

    python benchmarks/encoding.py [--collections scifact medline nfcorpus_preprocessed]
        [--precisions float32 bfloat16 int8 onnx-float32 onnx-int8] [--model FOLDER]
        [--latency-queries 200] [--latency-only]

Variants: torch's float32, bfloat16 and int8 (dynamic quantisation), and ONNX Runtime's
float32 and int8 ("onnx-float32", "onnx-int8"; the onnx extra, skipped without it). The
model is the peers' parity checkpoint (all-MiniLM-L6-v2 + a 128-d projection, assembled
from ../shared/fixtures/colbert-parity) unless --model names another. Each (collection,
variant) runs in its own process: it builds an exact index of the collection with documents
cut as colbert-ai cuts them (no passages, no full-text index), timing the build (almost all
encoding), then answers the test queries (k=100) for nDCG@10; its peak RSS is the memory
figure. The latency part builds one PLAID index of the first collection in float32 and times
single queries, one at a time, at k=10 and k=100 with queries encoded in each variant.
bfloat16 is skipped where the CPU has no bfloat16 units (emulated, 5x slower). Prints its
figures; asserts nothing.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from pathlib import Path

import numpy as np
import torch

from colbert_retriever.metrics import evaluate
from colbert_retriever.model.precision import encoding_precision, native_bfloat16
from colbert_retriever.text.corpus import read_qrels, read_queries

SHARED = Path(__file__).resolve().parents[2] / "shared"


def collection_files(name: str) -> tuple[Path, Path, Path]:
    folder = SHARED / "data" / name
    qrels = folder / "qrels" / "test.tsv"
    return folder / "corpus.jsonl", folder / "queries.jsonl", qrels


def judged_queries(name: str) -> tuple[list[str], list[str], dict[str, dict[str, int]]]:
    _, queries, qrels_file = collection_files(name)
    qrels = read_qrels(qrels_file)
    qids, texts = read_queries(queries)
    kept = [i for i, qid in enumerate(qids) if qid in qrels]
    return [qids[i] for i in kept], [texts[i] for i in kept], qrels


def variant(name: str) -> dict[str, str]:
    """Encoder settings of a variant: a precision, or "onnx-" and a precision for ONNX Runtime."""
    if name.startswith("onnx-"):
        return {"runtime": "onnxruntime", "precision": name.removeprefix("onnx-")}
    return {"precision": name}


def one_run(model: str, name: str, precision: str, work: Path) -> dict[str, object]:
    """Build, search and measure one collection in one precision (in a process of its own)."""
    from colbert_retriever import ColBERT
    from colbert_retriever.text.corpus import read_corpus

    corpus, _, _ = collection_files(name)
    documents = list(read_corpus(corpus))
    qids, texts, qrels = judged_queries(name)
    settings = {**variant(precision), "show_progress": False}
    folder = work / f"{name}-{precision}"
    shutil.rmtree(folder, ignore_errors=True)
    start = time.perf_counter()
    retriever = ColBERT.create(folder, model=model, index_type="exact", lexical=False, chunking=None, **settings)
    load = time.perf_counter() - start
    start = time.perf_counter()
    retriever.add_documents(documents)
    build = time.perf_counter() - start
    results = retriever.search_batch(texts, k=100)
    run = {qid: [hit.doc_id for hit in hits] for qid, hits in zip(qids, results, strict=True)}
    return {
        "collection": name,
        "precision": precision,
        "resolved": retriever.encoder.fingerprint.precision,
        "documents": len(documents),
        "load_s": load,
        "build_s": build,
        "docs_per_s": len(documents) / build,
        "ndcg@10": evaluate(run, qrels)["ndcg@10"],
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }


def latency(model: str, name: str, precisions: list[str], work: Path, n_queries: int) -> list[dict[str, object]]:
    """p50/p99 ms of one query end to end on a PLAID index, per query precision and k."""
    from colbert_retriever import ColBERT
    from colbert_retriever.text.corpus import read_corpus

    corpus, _, _ = collection_files(name)
    folder = work / f"{name}-plaid"
    if not folder.exists():
        built = ColBERT.create(
            folder,
            model=model,
            index_type="plaid",
            lexical=False,
            chunking=None,
            precision="float32",
            show_progress=False,
        )
        built.add_documents(read_corpus(corpus))
        built.close()
    _, texts, _ = judged_queries(name)
    texts = texts[:n_queries]
    rows = []
    for precision in precisions:
        retriever = ColBERT.open(folder, **variant(precision), show_progress=False)
        with closing(retriever):
            retriever.search(texts[0], k=10)  # warm-up
            for k in (10, 100):
                times = []
                for text in texts:
                    start = time.perf_counter()
                    retriever.search(text, k=k)
                    times.append(1000 * (time.perf_counter() - start))
                rows.append(
                    {
                        "precision": precision,
                        "k": k,
                        "p50_ms": float(np.percentile(times, 50)),
                        "p99_ms": float(np.percentile(times, 99)),
                    }
                )
    return rows


def parity_checkpoint(work: Path) -> str:
    assemble = SHARED / "fixtures" / "colbert-parity" / "assemble.py"
    subprocess.run([sys.executable, str(assemble), str(work / "parity")], check=True, capture_output=True)
    return str(work / "parity" / "stanford")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--collections", nargs="+", default=["scifact", "medline", "nfcorpus_preprocessed"])
    parser.add_argument(
        "--precisions",
        nargs="+",
        default=["float32", "bfloat16", "int8", "onnx-float32", "onnx-int8"],
        help="onnx-*: ONNX Runtime (the onnx extra), skipped without it",
    )
    parser.add_argument("--model", help="checkpoint folder (default: the parity checkpoint from ../shared)")
    parser.add_argument("--latency-queries", type=int, default=200, help="0: no latency part")
    parser.add_argument("--latency-only", action="store_true", help="skip the documents/s and nDCG@10 part")
    parser.add_argument("--work", type=Path, help="keep indexes here (default: a temporary folder)")
    parser.add_argument("--one", nargs=2, metavar=("COLLECTION", "PRECISION"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if not (SHARED / "data").is_dir():
        print(f"needs the shared collections at {SHARED / 'data'}")
        return 1
    if args.one:
        print(json.dumps(one_run(args.model, args.one[0], args.one[1], args.work)))
        return 0

    precisions = [p for p in args.precisions if p != "bfloat16" or native_bfloat16()]
    if importlib.util.find_spec("onnxruntime") is None:
        precisions = [p for p in precisions if not p.startswith("onnx-")]
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, bfloat16 units: {native_bfloat16()}, ")
    print(
        f"  {torch.get_num_threads()} threads, {os.cpu_count()} cores; precision 'auto' is {encoding_precision('auto')}"
    )
    with tempfile.TemporaryDirectory() as scratch:
        work = args.work or Path(scratch)
        work.mkdir(parents=True, exist_ok=True)
        model = args.model or parity_checkpoint(work)
        rows = []
        for name in [] if args.latency_only else args.collections:
            for precision in precisions:
                command = [sys.executable, __file__, "--one", name, precision, "--model", model, "--work", str(work)]
                done = subprocess.run(command, capture_output=True, text=True, check=True)
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
                print(json.dumps(rows[-1]), flush=True)
        if rows:
            print("\n| collection | precision | docs/s | x float32 | nDCG@10 | vs float32 | peak RSS MB |")
            print("|---|---|---|---|---|---|---|")
        for row in rows:
            base = next(r for r in rows if r["collection"] == row["collection"] and r["precision"] == "float32")
            print(
                f"| {row['collection']} | {row['precision']} | {row['docs_per_s']:.1f} "
                f"| {row['docs_per_s'] / base['docs_per_s']:.2f}x | {row['ndcg@10']:.4f} "
                f"| {row['ndcg@10'] - base['ndcg@10']:+.4f} | {row['peak_rss_mb']:.0f} |"
            )
        if args.latency_queries:
            print(f"\nOne query end to end, PLAID index of {args.collections[0]} (built in float32):")
            print("| query precision | k | p50 ms | p99 ms |\n|---|---|---|---|")
            for row in latency(model, args.collections[0], precisions, work, args.latency_queries):
                print(f"| {row['precision']} | {row['k']} | {row['p50_ms']:.1f} | {row['p99_ms']:.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
