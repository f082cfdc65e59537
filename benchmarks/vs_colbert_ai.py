"""Our search command against colbert-ai's searcher, start-up included, one after the other.

Usage: python benchmarks/vs_colbert_ai.py --index IDX --collection ../shared/data/scifact
           --colbert-python PEERS/venv-colbert/bin/python --colbert-index PEERS/colbert-ai-work/experiments
           [--colbert-name scifact.nbits2] [--rounds 2] [--ours "--runtime onnxruntime ..."]

Each round times, by wall clock around a fresh process, (1) `colbert-retriever search --index
IDX --queries Q -k 100 --json --mode late` and (2) colbert-ai 0.2.x opening the index that
`../shared/peers/run_colbert_ai.py` built (`Searcher`, same collection) and answering the
same queries one at a time with `Searcher.search(q, k=100)`, as its runner times them. Both
processes get 2 threads. Prints seconds, nDCG@10 and the ratio; asserts nothing.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import torch

from colbert_retriever.metrics import evaluate
from colbert_retriever.text.corpus import read_qrels, read_queries

# Run by colbert-ai's interpreter: argv = collection folder, experiments root, index name.
# Prints one {"qid", "doc_id"} line per hit, best first.
COLBERT_AI = """
import json, sys
import torch
torch.set_num_threads(2)
from colbert import Searcher
from colbert.infra import ColBERTConfig, Run, RunConfig
folder, root, name = sys.argv[1:4]
rows = [json.loads(line) for line in open(folder + "/corpus.jsonl", encoding="utf-8")]
ids = [str(row["_id"]) for row in rows]
texts = [(row.get("title") or "") + " " + (row.get("text") or "") for row in rows]  # as the index was built
with Run().context(RunConfig(nranks=1, experiment="bench", root=root)):
    searcher = Searcher(index=name, collection=texts, verbose=0, config=ColBERTConfig(root=root))
for line in open(sys.argv[4], encoding="utf-8"):
    query = json.loads(line)
    pids, _, _ = searcher.search(query["text"], k=100)
    for pid in pids:
        print(json.dumps({"qid": query["_id"], "doc_id": ids[pid]}))
"""


def timed(command: list[str], env: dict[str, str]) -> tuple[float, dict[str, list[str]]]:
    """Wall seconds of `command` and the run it printed (JSON lines with qid and doc_id)."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    seconds = time.perf_counter() - start
    run: dict[str, list[str]] = defaultdict(list)
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            hit = json.loads(line)
            run[hit["qid"]].append(hit["doc_id"])
    return seconds, dict(run)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--collection", type=Path, required=True)
    parser.add_argument("--colbert-python", required=True)
    parser.add_argument("--colbert-index", required=True, help="colbert-ai's experiments root")
    parser.add_argument("--colbert-name", default="scifact.nbits2")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--ours", default="", help="more options for our search, e.g. '--runtime onnxruntime'")
    args = parser.parse_args()

    qrels = read_qrels(args.collection / "qrels" / "test.tsv")
    qids, texts = read_queries(args.collection / "queries.jsonl")
    tests = [(q, t) for q, t in zip(qids, texts, strict=True) if q in qrels]
    env = {**os.environ, "OMP_NUM_THREADS": "2", "MKL_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    print(f"CPU capability: {torch.backends.cpu.get_cpu_capability()}, 2 threads; {len(tests)} queries, k=100")
    with tempfile.TemporaryDirectory() as tmp:
        queries = Path(tmp) / "queries.jsonl"
        queries.write_text("".join(json.dumps({"_id": q, "text": t}) + "\n" for q, t in tests), encoding="utf-8")
        ours = ["colbert-retriever", "search", "--index", str(args.index), "--queries", str(queries)]
        ours += ["-k", "100", "--json", "--mode", "late", "-q", *shlex.split(args.ours)]
        theirs = [args.colbert_python, "-c", COLBERT_AI, str(args.collection), args.colbert_index]
        theirs += [args.colbert_name, str(queries)]
        for round_no in range(1, args.rounds + 1):
            times = {}
            for name, command in (("ours", ours), ("colbert-ai", theirs)):
                load = os.getloadavg()[0]
                times[name], run = timed(command, env)
                ndcg = evaluate(run, qrels)["ndcg@10"]
                print(f"round {round_no} {name:>10}: {times[name]:6.1f} s  nDCG@10 {ndcg:.4f}  (load {load:.2f})")
            print(f"round {round_no}: ours {times['colbert-ai'] / times['ours']:.2f}x faster", flush=True)


if __name__ == "__main__":
    sys.exit(main())
