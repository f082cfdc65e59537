"""The `colbert-retriever` command: index, add, delete, search, info, eval, compact, retrain.

Handlers call the public API and format its results, nothing more. Errors of this library
exit 1 with one line on stderr; usage errors exit 2; Ctrl-C exits 130.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from collections.abc import Sequence
from typing import Any

from colbert_retriever.errors import ColbertRetrieverError

logger = logging.getLogger("colbert_retriever.cli")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI with `argv` (default: sys.argv[1:]); return the exit code."""
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        return args.handler(args)
    except ColbertRetrieverError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colbert-retriever", description="Late-interaction (ColBERT) retrieval.")
    commands = parser.add_subparsers(dest="command", required=True)

    def command(name: str, handler: Any, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        sub.add_argument("--quiet", "-q", action="store_true", help="no progress bars or log lines")
        return sub

    def model_options(sub: argparse.ArgumentParser, *, required: bool) -> None:
        sub.add_argument(
            "--model",
            required=required,
            help="local checkpoint folder or Hugging Face id"
            + ("" if required else " (default: the model recorded in the index)"),
        )
        sub.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
        sub.add_argument(
            "--precision",
            choices=["float32", "bfloat16"],
            default="float32",
            help="bfloat16: 1.7-3.4x faster encoding on CPUs with bf16 units, tiny quality cost",
        )

    sub = command("index", _index, "Create an index from a BEIR jsonl (_id, title, text) or a folder of .txt/.md")
    sub.add_argument("--index", required=True, help="folder for the new index")
    sub.add_argument("--input", required=True, help="corpus.jsonl or a folder of .txt/.md files")
    sub.add_argument(
        "--index-type",
        choices=["exact", "plaid", "auto"],
        default="auto",
        help="exact: float16 vectors, every token scored; plaid: compressed, PLAID search; "
        "auto (default): exact while small, plaid from ~2,000 passages",
    )
    sub.add_argument("--nbits", type=int, choices=[1, 2, 4], default=2, help="plaid: bits per residual dimension")
    sub.add_argument("--pool-factor", type=int, default=1, help="keep ~1/N of each document's token vectors")
    model_options(sub, required=True)

    sub = command("add", _add, "Add documents to an existing index")
    sub.add_argument("--index", required=True)
    sub.add_argument("--input", required=True, help="corpus.jsonl or a folder of .txt/.md files")
    sub.add_argument("--upsert", action="store_true", help="replace documents whose id is already indexed")
    model_options(sub, required=False)

    sub = command("delete", _delete, "Delete documents by id")
    sub.add_argument("--index", required=True)
    sub.add_argument("ids", nargs="+", help="document ids")

    sub = command("search", _search, "Search an index")
    sub.add_argument("--index", required=True)
    sub.add_argument("query", nargs="?", help="the question (or use --queries)")
    sub.add_argument("--queries", help="queries.jsonl (_id, text): run them all, adding each one's qid")
    sub.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    sub.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="JSON|FIELD=VALUE",
        help='keep documents that pass a filter: a JSON filter object (\'{"year": {"$gte": 2020}}\'; operators '
        "$eq $ne $in $nin $gt $gte $lt $lte $exists $contains $and $or $not) or FIELD=VALUE for equality "
        "(VALUE read as JSON, else as a string); repeatable, all must hold",
    )
    sub.add_argument("--json", action="store_true", help="one JSON object per result and line")
    _plaid_options(sub)
    model_options(sub, required=False)

    sub = command("info", _info, "Show an index's size, counts, model, and whether its checksums verify")
    sub.add_argument("--index", required=True)
    sub.add_argument("--verify", action="store_true", help="read every file and check its sha256")
    sub.add_argument("--json", action="store_true", help="print one JSON object")

    sub = command("eval", _eval, "nDCG@10, Recall@100 and MRR@10 of an index on a BEIR test collection")
    sub.add_argument("--index", required=True)
    sub.add_argument("--queries", required=True, help="queries.jsonl (_id, text)")
    sub.add_argument("--qrels", required=True, help="qrels tsv (query-id, corpus-id, score)")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    _plaid_options(sub)
    model_options(sub, required=False)

    sub = command("compact", _compact, "Rewrite an index without its deleted documents")
    sub.add_argument("--index", required=True)

    sub = command("retrain", _retrain, "Retrain a plaid index's centroids on its documents and recompress them")
    sub.add_argument("--index", required=True)
    return parser


def _plaid_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument("--ncells", type=int, help="plaid: centroids probed per query token (default: grows with k)")
    sub.add_argument("--ndocs", type=int, help="plaid: candidates reranked exactly (default: grows with k)")
    sub.add_argument(
        "--centroid-score-threshold", type=float, help="plaid: skip probed cells scoring below this (default: none)"
    )


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {"batch_size": args.batch_size, "precision": args.precision, "show_progress": not args.quiet}


def _open(args: argparse.Namespace) -> Any:
    from colbert_retriever.config import SearchConfig
    from colbert_retriever.retriever import ColBERT

    search = {
        name: getattr(args, name)
        for name in ("ncells", "ndocs", "centroid_score_threshold")
        if getattr(args, name, None) is not None
    }
    return ColBERT.open(args.index, model=args.model, search_config=SearchConfig(**search), **_settings(args))


def _add_corpus(retriever: Any, path: str, *, upsert: bool) -> int:
    from colbert_retriever.corpus import read_corpus

    return len(retriever.add_documents(read_corpus(path), upsert=upsert))  # streamed, never held whole


def _index(args: argparse.Namespace) -> int:
    from colbert_retriever.config import PlaidConfig
    from colbert_retriever.retriever import ColBERT

    retriever = ColBERT.create(
        args.index,
        model=args.model,
        index_type=args.index_type,
        plaid=PlaidConfig(nbits=args.nbits),
        pool_factor=args.pool_factor,
        **_settings(args),
    )
    count = _add_corpus(retriever, args.input, upsert=False)
    logger.info("indexed %d documents into %s", count, args.index)
    return 0


def _add(args: argparse.Namespace) -> int:
    retriever = _open(args)
    count = _add_corpus(retriever, args.input, upsert=args.upsert)
    logger.info("added %d documents; the index now holds %d", count, len(retriever))
    return 0


def _delete(args: argparse.Namespace) -> int:
    from colbert_retriever.index import Index

    index = Index.open(args.index)
    index.delete(args.ids)
    logger.info("deleted %d documents; the index now holds %d", len(args.ids), len(index))
    return 0


def _compact(args: argparse.Namespace) -> int:
    from colbert_retriever.index import Index

    index = Index.open(args.index)
    index.compact()
    logger.info("compacted %s: %d documents in %d bytes", args.index, len(index), index.info().bytes)
    return 0


def _retrain(args: argparse.Namespace) -> int:
    from colbert_retriever.index import Index

    index = Index.open(args.index)
    index.retrain()
    logger.info("retrained %s: %d centroids for %d tokens", args.index, index.info().centroids, index.n_tokens)
    return 0


def _search(args: argparse.Namespace) -> int:
    from colbert_retriever.corpus import read_jsonl

    if (args.query is None) == (args.queries is None):
        print("error: give either a query or --queries FILE", file=sys.stderr)
        return 2
    qids: list[str | None] = [None]
    texts: list[str] = [args.query]
    if args.queries:
        rows = list(read_jsonl(args.queries))
        qids, texts = [str(r["_id"]) for r in rows], [str(r.get("text", "")) for r in rows]
    retriever = _open(args)
    results = retriever.search_batch(texts, k=args.k, filters=_filters(args.filter))
    for qid, text, hits in zip(qids, texts, results, strict=True):
        if args.json:
            for hit in hits:
                line = {
                    "doc_id": hit.doc_id,
                    "score": hit.score,
                    "normalized_score": hit.normalized_score,
                    "rank": hit.rank,
                    "text": hit.text,
                    "metadata": hit.metadata,
                }
                print(json.dumps(line if qid is None else {"qid": qid, **line}, ensure_ascii=False))
            continue
        if qid is not None:
            print(f"# {qid}: {text}")
        for hit in hits:
            snippet = " ".join(hit.text.split())
            print(
                f"{hit.rank:>3}. {hit.score:8.3f}  {hit.doc_id}  {snippet[:100]}{'...' if len(snippet) > 100 else ''}"
            )
    return 0


def _info(args: argparse.Namespace) -> int:
    import dataclasses

    from colbert_retriever.index import Index

    index = Index.open(args.index, verify=False)  # sizes only: fast on any index
    if args.verify:
        index.verify()
    info = {**dataclasses.asdict(index.info()), "checksums": "verified" if args.verify else "not checked"}
    if args.json:
        print(json.dumps(info, ensure_ascii=False))
        return 0
    model = info.pop("model")
    for key, value in info.items():
        print(f"{key:<16} {value}")
    print(f"{'model':<16} {model['name']} ({model['format']}, dim {model['dim']}, fingerprint {model['digest']})")
    return 0


def _eval(args: argparse.Namespace) -> int:
    from colbert_retriever.corpus import read_jsonl, read_qrels
    from colbert_retriever.metrics import evaluate

    qrels = read_qrels(args.qrels)
    rows = [r for r in read_jsonl(args.queries) if str(r["_id"]) in qrels]
    retriever = _open(args)
    results = retriever.search_batch([str(r.get("text", "")) for r in rows], k=100)
    run = {str(r["_id"]): [hit.doc_id for hit in hits] for r, hits in zip(rows, results, strict=True)}
    scores = evaluate(run, qrels)
    if args.json:
        print(json.dumps(scores))
    else:
        for name, value in scores.items():
            print(f"{name:<11} {value:.4f}" if name != "queries" else f"{name:<11} {value}")
    return 0


def _filters(specs: list[str]) -> dict[str, Any] | None:
    """The `--filter` options as one filter object: each a JSON object or FIELD=VALUE, ANDed."""
    from colbert_retriever.errors import ConfigError

    parts: list[Any] = []
    for spec in specs:
        if spec.lstrip().startswith("{"):
            try:
                parts.append(json.loads(spec))
            except ValueError as exc:
                msg = f"--filter {spec!r:.60} is not a valid JSON object ({exc})"
                raise ConfigError(msg) from exc
            continue
        field, sep, value = spec.partition("=")
        if not sep or not field:
            msg = f"--filter expects a JSON object or FIELD=VALUE, got {spec!r}"
            raise ConfigError(msg)
        try:
            parts.append({field: json.loads(value)})
        except ValueError:
            parts.append({field: value})
    if not parts:
        return None
    return parts[0] if len(parts) == 1 else {"$and": parts}


if __name__ == "__main__":
    sys.exit(main())
