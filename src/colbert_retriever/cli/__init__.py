"""The `colbert-retriever` command: index, add, delete, search, info, eval, compact, retrain.

Every error ends in one line on stderr, never a traceback: errors of this library and of
the system (a path that is a file, a folder without permission) exit 1, usage errors 2,
Ctrl-C 130, and a closed output pipe (`| head`) ends quietly with 141, as `cat` would.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence

from colbert_retriever.cli.parser import build_parser
from colbert_retriever.errors import ColbertRetrieverError

__all__ = ["main"]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]); return the exit code."""
    args = build_parser().parse_args(argv)
    # The library's own notices (FAISS loading, zero-shot checkpoints) only with -v;
    # this command's reports unless -q.
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(message)s", stream=sys.stderr, force=True
    )
    logging.getLogger("colbert_retriever.cli").setLevel(logging.WARNING if args.quiet else logging.INFO)
    try:
        return int(args.handler(args))
    except ColbertRetrieverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except BrokenPipeError:
        _drop_stdout()
        return 141
    except OSError as exc:  # e.g. --index under a file, or in a folder we may not write to
        where = f": {exc.filename}" if exc.filename else ""
        print(f"error: {exc.strerror or exc}{where}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _drop_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit cannot fail a second time."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):  # stdout is not a file (e.g. captured in tests)
        pass
