"""Stress: concurrent searches (threads and processes, late and hybrid) while a writer process
adds, upserts, deletes and compacts, and is killed with SIGKILL at random points, again and
again.

After every kill the index must open with all checksums verified and hold exactly the
documents of the last completed write (or of the write in flight, if its commit landed), and
its full-text side must agree: each live group's version tag finds exactly its documents.

Usage:
    python benchmarks/stress.py --seconds 180     # full run
    python benchmarks/stress.py --short           # ~30 s, what CI runs

Prints its figures; exits 1 if a document was lost or any error was seen.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from colbert_retriever import DocumentBatch, Index

DIM, GROUP = 32, 5
MODEL = {"name": "stress", "format": "transformers", "dim": DIM, "digest": "stress", "layout": {}}


def vectors(seed: int, n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        x = rng.standard_normal((int(rng.integers(3, 40)), DIM)).astype(np.float32)
        out.append(x / np.linalg.norm(x, axis=1, keepdims=True))
    return out


def group_batch(group: int, version: int) -> DocumentBatch:
    """A group's documents: written, replaced and deleted together, always all five."""
    ids = [f"g{group}-{j}" for j in range(GROUP)]
    texts = [f"group {group} version {version} tag {tag(group, version)}"] * GROUP
    return DocumentBatch(
        ids=ids,
        texts=texts,
        metadata=[{"group": group, "version": version}] * GROUP,
        vectors=vectors(group * 1000 + version, GROUP),
    )


def tag(group: int, version: int) -> str:
    """A word only this version of this group's documents hold (for the full-text side)."""
    return f"g{group}v{version}"


def choose_op(n: int, live: list[int]) -> dict:
    rng = random.Random(n)
    roll = rng.random()
    if roll < 0.05:
        return {"n": n, "op": "compact", "group": -1}
    if live and roll < 0.25:
        return {"n": n, "op": "delete", "group": rng.choice(live)}
    if live and roll < 0.5:
        return {"n": n, "op": "upsert", "group": rng.choice(live)}
    return {"n": n, "op": "add", "group": n}


def apply(state: dict[int, int], op: dict) -> dict[int, int]:
    """The expected {group: version} after `op`."""
    state = dict(state)
    if op["op"] == "compact":
        return state
    if op["op"] == "delete":
        state.pop(op["group"], None)
    else:
        state[op["group"]] = op["n"]
    return state


def writer(folder: Path, journal: Path, start: int) -> None:
    """Run writes forever, logging each intent and each completion (fsynced)."""
    index = Index.open(folder)
    with open(journal, "a", encoding="utf-8") as log:
        n = start
        while True:
            live = sorted({int(d.split("-")[0][1:]) for d in index.doc_ids()})
            op = choose_op(n, live)
            log.write(json.dumps(op) + "\n")
            log.flush()
            os.fsync(log.fileno())
            if op["op"] == "compact":
                index.compact()
            elif op["op"] == "delete":
                index.delete([f"g{op['group']}-{j}" for j in range(GROUP)])
            else:
                index.write([group_batch(op["group"], n)], upsert=op["op"] == "upsert")
            log.write(json.dumps({"n": n, "done": True}) + "\n")
            log.flush()
            os.fsync(log.fileno())
            n += 1
            time.sleep(random.random() * 0.01)


def check_snapshot(index: Index) -> str | None:
    """A committed state holds every group whole, all at one version; else say what is torn.
    Read from one state (a handle's reads each load the newest commit first)."""
    snap = index.reader().snapshot
    ids = snap.live_ids()
    groups: dict[str, set] = {}
    for doc_id, (seg_no, rows) in snap.locate(ids).items():
        (row, *_) = snap.segments[seg_no].documents.read(rows)
        groups.setdefault(doc_id.split("-")[0], set()).add((row.metadata["version"], row.text))
    counts: dict[str, int] = {}
    for doc_id in ids:
        counts[doc_id.split("-")[0]] = counts.get(doc_id.split("-")[0], 0) + 1
    for group, versions in groups.items():
        if counts[group] != GROUP or len(versions) != 1:
            return f"torn group {group}: {counts[group]} docs, versions {versions}"
    return None


def searcher(folder: Path, seconds: float) -> dict[str, object]:
    """Search and check consistency until time is up; return counts."""
    rng = np.random.default_rng(os.getpid())
    index = Index.open(folder, verify=False)
    served, errors, deadline = 0, [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            index.refresh()
            if len(index) == 0:  # every group deleted: a legitimate state
                continue
            query = rng.standard_normal((8, DIM)).astype(np.float32)
            group = int(rng.integers(0, 40))
            for mode in ("late", "hybrid"):
                hits = index.search([query], k=20, mode=mode, texts=[f"group {group}"])[0]
                if len({h.doc_id for h in hits}) != len(hits):
                    errors.append(f"duplicate {mode} hits")
            if served % 10 == 0 and (problem := check_snapshot(index)):
                errors.append(problem)
            served += 1
        except Exception as exc:  # every failure is a finding
            errors.append(f"{type(exc).__name__}: {exc}")
    return {"served": served, "errors": errors}


def replay(journal: Path) -> tuple[dict[int, int], dict | None, int]:
    """State after the last completed write, the write in flight (if any), next op number.

    A line torn by a kill is cut off: its write never started (the intent is logged first).
    """
    text = journal.read_text()
    if text and not text.endswith("\n"):
        text = text[: text.rfind("\n") + 1]
        journal.write_text(text)
    state: dict[int, int] = {}
    pending: dict | None = None
    last = -1
    for line in text.splitlines():
        entry = json.loads(line)
        last = entry["n"]
        if entry.get("done"):
            state, pending = apply(state, pending), None
        elif entry.get("aborted"):
            pending = None
        else:
            pending = entry
    return state, pending, last + 1


def actual_state(index: Index) -> dict[int, int]:
    return {int(d.doc_id.split("-")[0][1:]): d.metadata["version"] for d in index.get(index.doc_ids())}


def check_lexical(index: Index, state: dict[int, int]) -> str | None:
    """Each live group's version tag finds exactly its documents by BM25; else say which not."""
    query = np.ones((1, DIM), dtype=np.float32)  # lexical mode reads only the text
    for group, version in state.items():
        hits = index.search([query], k=2 * GROUP, mode="lexical", texts=[tag(group, version)])[0]
        if sorted(h.doc_id for h in hits) != [f"g{group}-{j}" for j in range(GROUP)]:
            return f"full-text side: tag {tag(group, version)} finds {sorted(h.doc_id for h in hits)}"
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=180.0)
    parser.add_argument("--short", action="store_true", help="a ~30 s run (CI)")
    parser.add_argument("--searcher-processes", type=int, default=2)
    parser.add_argument("--searcher-threads", type=int, default=2)
    parser.add_argument("--role", choices=["writer", "searcher"], help=argparse.SUPPRESS)
    parser.add_argument("--folder", help=argparse.SUPPRESS)
    parser.add_argument("--journal", help=argparse.SUPPRESS)
    parser.add_argument("--start", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.role == "writer":
        writer(Path(args.folder), Path(args.journal), args.start)
        return 0
    if args.role == "searcher":
        print(json.dumps(searcher(Path(args.folder), args.seconds)))
        return 0
    seconds = 30.0 if args.short else args.seconds
    import torch  # here, not at the top: writer and searcher processes start without it

    cpu = torch.backends.cpu.get_cpu_capability()
    print(f"CPU capability: {cpu}, {args.searcher_processes} searcher processes x {args.searcher_threads} threads")

    with tempfile.TemporaryDirectory() as tmp:
        folder, journal = Path(tmp) / "idx", Path(tmp) / "journal.jsonl"
        index = Index.create(folder, model=MODEL, dim=DIM)
        with open(journal, "w", encoding="utf-8") as log:  # 20 groups to start with
            for n in range(20):
                index.write([group_batch(n, n)])
                log.write(
                    json.dumps({"n": n, "op": "add", "group": n}) + "\n" + json.dumps({"n": n, "done": True}) + "\n"
                )
        me = [sys.executable, __file__, "--folder", str(folder)]
        processes = [
            subprocess.Popen([*me, "--role", "searcher", "--seconds", str(seconds)], stdout=subprocess.PIPE, text=True)
            for _ in range(args.searcher_processes)
        ]
        results: list[dict] = []
        threads = [
            threading.Thread(target=lambda: results.append(searcher(folder, seconds)))
            for _ in range(args.searcher_threads)
        ]
        for thread in threads:
            thread.start()

        kills, lost, problems, start = 0, 0, [], time.monotonic()
        while time.monotonic() - start < seconds:
            _, _, next_n = replay(journal)
            size = journal.stat().st_size
            proc = subprocess.Popen([*me, "--role", "writer", "--journal", str(journal), "--start", str(next_n)])
            ready = time.monotonic() + 60
            while b'"done"' not in journal.read_bytes()[size:] and time.monotonic() < ready:
                time.sleep(0.01)  # a new process's first write is slow (~0.4 s): let one land, then kill at random
            time.sleep(random.uniform(0.0, 0.5))
            proc.send_signal(signal.SIGKILL)
            proc.wait()
            kills += 1
            done_state, pending, _ = replay(journal)
            try:
                opened = Index.open(folder, verify=True)
                got = actual_state(opened)
                if problem := check_lexical(opened, got):
                    problems.append(f"after kill {kills}: {problem}")
            except Exception as exc:
                problems.append(f"after kill {kills}: {type(exc).__name__}: {exc}")
                continue
            if pending:  # settle the write in flight: it landed whole, or not at all
                landed = got == apply(done_state, pending) and got != done_state
                with open(journal, "a", encoding="utf-8") as log:
                    log.write(json.dumps({"n": pending["n"], "done" if landed else "aborted": True}) + "\n")
            allowed = [done_state] + ([apply(done_state, pending)] if pending else [])
            if got not in allowed:
                missing = set(done_state) - set(got)
                if pending and pending["op"] == "delete":
                    missing.discard(pending["group"])
                lost += GROUP * len(missing)
                problems.append(f"after kill {kills}: index holds {len(got)} groups, expected {len(done_state)}")
        elapsed = time.monotonic() - start
        for thread in threads:
            thread.join()
        for proc in processes:
            out, _ = proc.communicate()
            results.append(json.loads(out))

        writes = sum(1 for line in journal.read_text().splitlines() if '"done"' in line)
        served = sum(r["served"] for r in results)
        errors = [e for r in results for e in r["errors"]] + problems
        final = Index.open(folder, verify=True)
        print(f"minutes run          : {elapsed / 60:.2f}")
        print(f"writes completed     : {writes}")
        print(f"writer kills survived: {kills}")
        print(f"documents lost       : {lost}")
        print(
            f"searches served      : {served} ({args.searcher_threads} threads + {args.searcher_processes} processes)"
        )
        print(f"searches/s (writing) : {served / elapsed:.1f}")
        print(f"final index          : {len(final)} documents, checksums verified")
        print(f"errors               : {len(errors)}")
        for error in errors[:10]:
            print(f"  {error}")
        return 1 if lost or errors else 0


if __name__ == "__main__":
    sys.exit(main())
