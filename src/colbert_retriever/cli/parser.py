"""The command line's grammar: subcommands, their options and help texts."""

from __future__ import annotations

import argparse
from collections.abc import Callable

from colbert_retriever._version import __version__
from colbert_retriever.cli import commands

Handler = Callable[[argparse.Namespace], int]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="colbert-retriever", description="Late-interaction (ColBERT) retrieval.")
    parser.add_argument("--version", action="version", version=f"colbert-retriever {__version__}")
    subcommands = parser.add_subparsers(dest="command", required=True)

    def command(
        name: str, handler: Handler, help_text: str, index_help: str, *, qdrant: bool = True
    ) -> argparse.ArgumentParser:
        sub = subcommands.add_parser(name, help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        if qdrant:
            _location_options(sub, index_help)
        else:
            sub.add_argument("--index", required=True, metavar="FOLDER", help=index_help)
        sub.add_argument("--quiet", "-q", action="store_true", help="no progress bars or reports, only errors")
        sub.add_argument("--verbose", "-v", action="store_true", help="also the library's notices")
        return sub

    sub = command(
        "index",
        commands.index,
        "Create an index from a BEIR jsonl (_id, title, text) or a folder of .txt/.md/.pdf",
        "folder for the new index (new or empty)",
    )
    _input_options(sub)
    sub.add_argument("--exist-ok", action="store_true", help="add to the index if FOLDER already holds one")
    sub.add_argument(
        "--index-type",
        choices=["exact", "plaid", "auto"],
        default="auto",
        help="exact: float16 vectors, every token scored; plaid: compressed, PLAID search; "
        "auto (default): exact while small, plaid from ~2,000 passages",
    )
    sub.add_argument("--nbits", type=int, choices=[1, 2, 4], help="plaid and auto: bits per residual dimension (2)")
    sub.add_argument("--pool-factor", type=int, default=1, help="keep ~1/N of each document's token vectors")
    sub.add_argument(
        "--no-lexical",
        action="store_true",
        help="no full-text (BM25) index beside the vectors: late-interaction search only",
    )
    sub.add_argument(
        "--truncate-dim",
        type=int,
        help="keep the first N dimensions of every vector (Matryoshka checkpoints, e.g. jina-colbert-v2: 128, 96, 64)",
    )
    _model_options(sub, required=True)

    sub = command("add", commands.add, "Add documents to an existing index", "the index to add to")
    _input_options(sub)
    sub.add_argument("--upsert", action="store_true", help="replace documents whose id is already indexed")
    _model_options(sub, required=False)

    sub = command("delete", commands.delete, "Delete documents by id", "the index to delete from")
    sub.add_argument("ids", nargs="+", help="document ids")
    sub.add_argument("--ignore-missing", action="store_true", help="skip ids the index does not hold")

    sub = command("search", commands.search, "Search an index", "the index to search")
    sub.add_argument("query", nargs="?", help="the question (or use --queries)")
    sub.add_argument("--queries", help="queries.jsonl (_id, text): run them all, adding each one's qid")
    sub.add_argument("-k", type=int, default=10, help="results per query (default 10)")
    sub.add_argument(
        "--filter",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="keep documents whose metadata FIELD equals the string VALUE; repeatable: different fields "
        "must all match, a repeated field matches any of its values",
    )
    sub.add_argument(
        "--filter-json",
        action="append",
        default=[],
        metavar="JSON",
        help='keep documents that pass a filter object, e.g. \'{"year": {"$gte": 2020}}\' (operators $eq $ne '
        "$in $nin $gt $gte $lt $lte $exists $contains $and $or $not); repeatable, all must hold",
    )
    sub.add_argument("--json", action="store_true", help="one JSON object per result and line")
    sub.add_argument(
        "--explain",
        action="store_true",
        help="show each hit's passage with the words that matched marked (--json: an explanation per query token)",
    )
    sub.add_argument("--passages", action="store_true", help="the k best passages, several of one document among them")
    _search_options(sub)
    _model_options(sub, required=False)

    sub = command(
        "serve",
        commands.serve,
        "Serve an index over HTTP: a JSON API (docs at /docs) and a search page at / (the serve extra)",
        "the index to serve",
    )
    sub.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1: this machine only)")
    sub.add_argument("--port", type=int, default=8000, help="port (default 8000)")
    sub.add_argument(
        "--service-key",
        help="require this key as the X-API-Key header (default: the COLBERT_API_KEY environment variable; none)",
    )
    sub.add_argument(
        "--no-key", action="store_true", help="serve beyond this machine (--host) without a key (refused otherwise)"
    )
    sub.add_argument("--max-k", type=int, default=1000, help="largest k a search may ask for (default 1000)")
    sub.add_argument(
        "--max-query-chars", type=int, default=4096, help="longest query a search may send (default 4096 characters)"
    )
    _search_options(sub)
    _model_options(sub, required=False)

    sub = command(
        "info",
        commands.info,
        "Show an index's size, counts, model, and whether it verifies",
        "the index to describe",
    )
    sub.add_argument("--verify", action="store_true", help="check every file's sha256 and the arrays' structure")
    sub.add_argument("--json", action="store_true", help="print one JSON object")

    sub = command(
        "eval",
        commands.evaluate,
        "nDCG@10, Recall@100 and MRR@10 of an index on a BEIR test collection",
        "the index to evaluate",
    )
    sub.add_argument("--queries", required=True, help="queries.jsonl (_id, text)")
    sub.add_argument("--qrels", required=True, help="qrels tsv (query-id, corpus-id, score)")
    sub.add_argument("--json", action="store_true", help="print one JSON object")
    _search_options(sub)
    _model_options(sub, required=False)

    sub = command(
        "compact",
        commands.compact,
        "Rewrite an index without its deleted documents",
        "the index to compact",
        qdrant=False,
    )
    lexical = sub.add_mutually_exclusive_group()
    lexical.add_argument("--lexical", action="store_true", default=None, help="add a full-text (BM25) index")
    lexical.add_argument("--no-lexical", dest="lexical", action="store_false", help="drop the full-text index")

    sub = command(
        "retrain",
        commands.retrain,
        "Retrain a plaid index's centroids on its documents and recompress them",
        "the index to retrain",
        qdrant=False,
    )
    sub.add_argument("--force", action="store_true", help="also compress an auto index that is still exact")
    return parser


def _location_options(sub: argparse.ArgumentParser, index_help: str) -> None:
    where = sub.add_mutually_exclusive_group(required=True)
    where.add_argument("--index", metavar="FOLDER", help=index_help)
    where.add_argument("--qdrant-url", metavar="URL", help="a Qdrant server or cluster instead of a folder")
    where.add_argument("--qdrant-path", metavar="DIR", help="Qdrant local mode in DIR (no server)")
    where.add_argument("--qdrant-edge", metavar="DIR", help="Qdrant Edge shards in DIR (Qdrant's engine in process)")
    sub.add_argument("--api-key", help="the Qdrant server's API key (default: the QDRANT_API_KEY environment variable)")
    sub.add_argument("--collection", default="colbert", help="the Qdrant collection (default: colbert)")


def _input_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--input", required=True, help="corpus.jsonl or a folder of .txt/.md/.pdf files (PDF: the pdf extra)"
    )
    sub.add_argument(
        "--strict",
        action="store_true",
        help="refuse blank documents and files not in UTF-8/16/32 instead of skipping them",
    )
    sub.add_argument(
        "--overlap",
        type=int,
        default=32,
        help="texts longer than the model reads are split into passages; word pieces each repeats from the one "
        "before (default 32)",
    )
    sub.add_argument(
        "--no-chunking",
        action="store_true",
        help="store each text cut at the model's doc_maxlen instead of as passages (counted in a warning)",
    )


def _model_options(sub: argparse.ArgumentParser, *, required: bool) -> None:
    sub.add_argument(
        "--model",
        required=required,
        help="local checkpoint folder or Hugging Face id" + ("" if required else " (default: the index's model)"),
    )
    sub.add_argument("--batch-size", type=int, default=32, help="texts per forward pass (default 32)")
    sub.add_argument(
        "--precision",
        choices=["auto", "float32", "bfloat16", "int8"],
        default="auto",
        help="auto (default): bfloat16 where the CPU has bf16 units (~3x faster, tiny quality cost), "
        "else float32; float32 reproduces colbert-ai and PyLate exactly; int8: CPU only, linear layers in int8",
    )
    sub.add_argument(
        "--runtime",
        choices=["torch", "onnxruntime"],
        default="torch",
        help="torch (default), or onnxruntime (the onnx extra): the model exported to ONNX at start, "
        "~1.5x faster on a CPU for the same float32 vectors, ~2.3x in int8 (its auto precision)",
    )
    sub.add_argument(
        "--onnx-cache",
        metavar="DIR",
        help="with --runtime onnxruntime: keep the exported model in DIR so that later runs skip the export",
    )
    sub.add_argument(
        "--device",
        default="auto",
        help="where the model runs: auto (default: a CUDA GPU if there is one), cpu, cuda or cuda:N",
    )
    sub.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="let the checkpoint run the Python code it ships (e.g. jina-colbert-v2); only for checkpoints you trust",
    )


def _search_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--mode",
        choices=["hybrid", "late", "lexical"],
        help="hybrid: late interaction and BM25 fused (the default where the index has a full-text index); "
        "late: late interaction alone (the default elsewhere); lexical: BM25 alone",
    )
    sub.add_argument(
        "--fusion",
        choices=["saturated", "blend", "rrf"],
        help="hybrid: saturated (default): late interaction over the query tokens plus a saturated BM25, "
        "a score a threshold can use; blend: weighted sum of min-max normalised scores; rrf: reciprocal-rank fusion",
    )
    sub.add_argument("--late-weight", type=float, help="hybrid: weight of late interaction in [0, 1] (0.8)")
    sub.add_argument("--ncells", type=int, help="plaid: centroids probed per query token (default: grows with k)")
    sub.add_argument("--ndocs", type=int, help="plaid: candidates reranked exactly (default: grows with k)")
    sub.add_argument(
        "--centroid-score-threshold", type=float, help="plaid: skip probed cells scoring below this (default: none)"
    )
