"""One handler per subcommand: call the public API and format its results, nothing more.

Heavy modules (torch, via the retriever) are imported inside the handlers that need them,
so `--help` and errors in the arguments stay instant.
"""

from __future__ import annotations

import argparse
import dataclasses
import ipaddress
import json
import logging
import os
import sys
import textwrap
from contextlib import closing
from pathlib import Path
from typing import Any

from colbert_retriever.cli.inputs import Corpus, check_new_index_path, parse_filters
from colbert_retriever.errors import ConfigError, IndexExistsError, MissingDependencyError

logger = logging.getLogger("colbert_retriever.cli")


def index(args: argparse.Namespace) -> int:
    from colbert_retriever.config import PlaidConfig
    from colbert_retriever.retriever import ColBERT
    from colbert_retriever.stores.location import store_exists

    location = _location(args)
    if args.nbits is not None and args.index_type == "exact":
        msg = "--nbits applies to plaid and auto indexes, not to --index-type exact"
        raise ConfigError(msg)
    exists = store_exists(location)
    if exists and not args.exist_ok:
        msg = f"an index already exists at {_where(args)}; add to it with `colbert-retriever add` (or index --exist-ok)"
        raise IndexExistsError(msg)
    if not exists and isinstance(location, Path):
        check_new_index_path(location)
    corpus = _corpus(args)  # the input is checked before the model loads
    folder_existed = isinstance(location, Path) and location.exists()
    retriever = ColBERT.create(
        location,
        model=args.model,
        index_type=args.index_type,
        plaid=None if args.nbits is None else PlaidConfig(nbits=args.nbits),
        pool_factor=args.pool_factor,
        lexical=not args.no_lexical,
        exist_ok=args.exist_ok,
        chunking=_chunking(args),
        **_settings(args),
        **({} if args.truncate_dim is None else {"truncate_dim": args.truncate_dim}),
    )
    try:
        count = len(retriever.add_documents(corpus))
    except BaseException:  # a failed first write (or Ctrl-C) leaves no empty index to block the retry
        if not exists:
            _remove_unused(retriever, location, remove_folder=not folder_existed)
        raise
    _report_blank(corpus)
    logger.info("indexed %d documents into %s", count, _where(args))
    retriever.close()
    return 0


def add(args: argparse.Namespace) -> int:
    corpus = _corpus(args)  # the input is checked before the model loads
    with closing(_open(args)) as retriever:
        retriever.chunking = _chunking(args)
        before = len(retriever)
        count = len(retriever.add_documents(corpus, upsert=args.upsert))
        _report_blank(corpus)
        added = len(retriever) - before
        if args.upsert:
            logger.info("updated %d, added %d; the index now holds %d", count - added, added, len(retriever))
        else:
            logger.info("added %d documents; the index now holds %d", count, len(retriever))
        return 0


def delete(args: argparse.Namespace) -> int:
    from colbert_retriever.stores.location import open_store

    with closing(open_store(_location(args))) as store:
        before = len(store)
        store.delete(args.ids, missing_ok=args.ignore_missing)
        logger.info("deleted %d documents; the index now holds %d", before - len(store), len(store))
        return 0


def compact(args: argparse.Namespace) -> int:
    from colbert_retriever.stores.folder.index import Index

    store = Index.open(args.index)
    store.compact(lexical=args.lexical)
    info = store.info()
    lexical = "with" if info.lexical else "without"
    logger.info("compacted %s: %d documents, %d bytes, %s full-text index", args.index, len(store), info.bytes, lexical)
    return 0


def retrain(args: argparse.Namespace) -> int:
    from colbert_retriever.stores.folder.index import Index

    store = Index.open(args.index)
    store.retrain(force=args.force)
    logger.info("retrained %s: %d centroids for %d tokens", args.index, store.info().centroids, store.n_tokens)
    return 0


def search(args: argparse.Namespace) -> int:
    from colbert_retriever.text.corpus import read_queries

    if (args.query is None) == (args.queries is None):
        print("error: give either a query or --queries FILE", file=sys.stderr)
        return 2
    filters = parse_filters(args.filter, args.filter_json)
    qids: list[str | None] = [None]
    texts: list[str] = [args.query]
    if args.queries:
        ids, texts = read_queries(args.queries)
        qids = list(ids)
    unit = "passage" if args.passages else "document"
    with closing(_open(args)) as retriever:
        results = retriever.search_batch(
            texts, k=args.k, filters=filters, unit=unit, mode=args.mode, highlights=args.explain
        )
    for qid, text, hits in zip(qids, texts, results, strict=True):
        if not hits and args.verbose:
            logger.info("no results for %s", repr(text) if qid is None else f"query {qid}")
        if args.json:
            for hit in hits:
                line = hit.to_json()
                print(json.dumps(line if qid is None else {"qid": qid, **line}, ensure_ascii=False))
            continue
        if qid is not None and hits:
            print(f"# {qid}: {text}")
        for hit in hits:
            where = f"  [passage {hit.passage}, chars {hit.start}-{hit.end}]" if hit.passage or args.explain else ""
            if args.explain:
                print(f"{hit.rank:>3}. {hit.score:8.3f}  {hit.doc_id}{where}")
                print(textwrap.indent(_marked(hit.text, hit.highlights, sys.stdout.isatty()), "      "))
                continue
            snippet = " ".join(hit.text.split())
            more = "..." if len(snippet) > 100 else ""
            print(f"{hit.rank:>3}. {hit.score:8.3f}  {hit.doc_id}  {snippet[:100]}{more}{where}")
    return 0


def _marked(text: str, spans: list[tuple[int, int]], color: bool) -> str:
    """`text` with `spans` marked: bold yellow on a terminal, **like this** elsewhere."""
    begin, end = ("\033[1;33m", "\033[0m") if color else ("**", "**")
    out, done = [], 0
    for start, stop in spans:
        out += [text[done:start], begin, text[start:stop], end]
        done = stop
    return "".join([*out, text[done:]]).strip()


def serve(args: argparse.Namespace) -> int:
    try:
        import uvicorn

        from colbert_retriever.service import ServiceConfig, create_app
    except ImportError as exc:
        msg = f"serve needs FastAPI and uvicorn ({exc.name} is missing): pip install 'colbert-retriever[serve]'"
        raise MissingDependencyError(msg) from exc
    config = ServiceConfig(
        api_key=args.service_key or os.environ.get("COLBERT_API_KEY"),
        max_k=args.max_k,
        max_query_chars=args.max_query_chars,
    )
    if config.api_key is None and not _loopback(args.host) and not args.no_key:
        msg = (
            f"--host {args.host} lets other machines in, and no key is set: give --service-key "
            "(or COLBERT_API_KEY), or --no-key to serve without one"
        )
        raise ConfigError(msg)
    if config.api_key is None and not _loopback(args.host):
        logger.warning("serving %s without a key: anyone who reaches this address may read and write it", args.host)
    args.quiet = True  # a server's log is no place for progress bars
    with closing(_open(args)) as retriever:
        where = f"http://{args.host}:{args.port}"
        logger.info("serving %s at %s (search page at /, API docs at /docs)", _where(args), where)
        uvicorn.run(create_app(retriever, config), host=args.host, port=args.port, log_level="warning")
    return 0


def _loopback(host: str) -> bool:
    """Whether `host` is reachable from this machine only."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a name: it may resolve to anything
        return False


def info(args: argparse.Namespace) -> int:
    from colbert_retriever.stores.folder.index import Index
    from colbert_retriever.stores.location import open_store

    with closing(open_store(_location(args))) as store:  # sizes only: fast on any index folder
        if args.verify:
            if not isinstance(store, Index):
                msg = "--verify checks an index folder's files; a Qdrant collection has none to check"
                raise ConfigError(msg)
            store.verify()
        described = {**dataclasses.asdict(store.info()), "checksums": "verified" if args.verify else "not checked"}
    if args.json:
        print(json.dumps(described, ensure_ascii=False))
        return 0
    model = described.pop("model")
    described["model"] = f"{model['name']} ({model['format']}, dim {model['dim']}, fingerprint {model['digest']})"
    width = max(len(key) for key in described)
    for key, value in described.items():
        print(f"{key:<{width}}  {value}")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from colbert_retriever.metrics import evaluate
    from colbert_retriever.text.corpus import read_qrels, read_queries

    qrels = read_qrels(args.qrels)
    qids, texts = read_queries(args.queries)
    judged = [i for i, qid in enumerate(qids) if qid in qrels]
    if not judged:
        msg = f"no query id of {args.queries} appears in {args.qrels}; are they of the same collection and split?"
        raise ConfigError(msg)
    with closing(_open(args)) as retriever:
        results = retriever.search_batch([texts[i] for i in judged], k=100, mode=args.mode)
    run = {qids[i]: [hit.doc_id for hit in hits] for i, hits in zip(judged, results, strict=True)}
    scores = evaluate(run, qrels)
    if args.json:
        print(json.dumps(scores))
    else:
        for name, value in scores.items():
            print(f"{name:<11} {value:.4f}" if name != "queries" else f"{name:<11} {value}")
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {
        "batch_size": args.batch_size,
        "precision": args.precision,
        "runtime": args.runtime,
        "onnx_cache": args.onnx_cache,
        "device": args.device,
        "show_progress": not args.quiet,
        "trust_remote_code": args.trust_remote_code,
    }


def _chunking(args: argparse.Namespace) -> Any:
    from colbert_retriever.config import Chunking

    return None if args.no_chunking else Chunking(overlap=args.overlap)


def _open(args: argparse.Namespace) -> Any:
    from colbert_retriever.config import SearchConfig
    from colbert_retriever.retriever import ColBERT

    search = {
        name: getattr(args, name)
        for name in ("ncells", "ndocs", "centroid_score_threshold", "fusion", "late_weight")
        if getattr(args, name, None) is not None
    }
    return ColBERT.open(_location(args), model=args.model, search_config=SearchConfig(**search), **_settings(args))


def _location(args: argparse.Namespace) -> Any:
    """--index FOLDER as a Path, or --qdrant-url / --qdrant-path / --qdrant-edge with --collection
    as a QdrantConfig."""
    if getattr(args, "index", None) is not None:
        return Path(args.index)
    from colbert_retriever.stores.qdrant.config import QdrantConfig

    show_progress = not args.quiet
    if args.qdrant_url is not None:
        api_key = args.api_key or os.environ.get("QDRANT_API_KEY")
        return QdrantConfig(args.collection, url=args.qdrant_url, api_key=api_key, show_progress=show_progress)
    if args.qdrant_edge is not None:
        return QdrantConfig(args.collection, path=args.qdrant_edge, edge=True, show_progress=show_progress)
    return QdrantConfig(args.collection, path=args.qdrant_path, show_progress=show_progress)


def _where(args: argparse.Namespace) -> str:
    from colbert_retriever.stores.location import describe

    return describe(_location(args))


def _remove_unused(retriever: Any, location: Any, *, remove_folder: bool) -> None:
    """Undo the creation of an index whose first write failed."""
    if isinstance(location, Path):
        from colbert_retriever.stores.folder.manifest import remove_unused_index

        remove_unused_index(location, remove_folder=remove_folder)
    else:
        retriever.index.drop()


def _corpus(args: argparse.Namespace) -> Corpus:
    from colbert_retriever.text.corpus import count_documents, read_corpus

    return Corpus(read_corpus(args.input, strict=args.strict), total=count_documents(args.input), strict=args.strict)


def _report_blank(corpus: Corpus) -> None:
    if report := corpus.blank_report():
        logger.warning("%s", report)
