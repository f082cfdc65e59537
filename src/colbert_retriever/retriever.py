"""`ColBERT`: the front door. An encoder plus a store, in three lines::

retriever = ColBERT.create("./my-index", model="colbert-ir/colbertv2.0")
retriever.add(texts, ids=ids, metadata=metadata)
hits = retriever.search("what is late interaction?", k=10)
"""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
import weakref
from collections.abc import Iterable, Iterator, Sequence, Sized
from pathlib import Path
from typing import Any

import numpy as np

from colbert_retriever.config import (
    Chunking,
    IndexConfig,
    IndexType,
    Mode,
    PlaidConfig,
    SearchConfig,
    Unit,
)
from colbert_retriever.errors import ConfigError
from colbert_retriever.explain import explain
from colbert_retriever.filters import Filter
from colbert_retriever.maxsim import maxsim, pad_queries
from colbert_retriever.model.encoder import Encoder
from colbert_retriever.pipeline.search import search
from colbert_retriever.results import Document, Explanation, Hit, IndexInfo, RerankHit
from colbert_retriever.stores.location import Location, create_store, describe, open_store, store_exists
from colbert_retriever.stores.protocol import Reader, Store
from colbert_retriever.text.corpus import zip_documents
from colbert_retriever.text.passages import encode_documents
from colbert_retriever.validation import check_columns, check_texts

_SPLIT = Chunking()


class ColBERT:
    """Late-interaction retrieval: encode with a ColBERT checkpoint, store, search by MaxSim.

    Build one with `create` (new index), `open` (existing index) or `from_pretrained`
    (no index: `rerank` only). Searching is thread-safe; writes are atomic.
    """

    def __init__(self, encoder: Encoder, store: Store | None = None, *, chunking: Chunking | None = _SPLIT) -> None:
        self.encoder = encoder
        self._store = store
        self.chunking = chunking
        self._remove_folder: weakref.finalize[Any, Any] | None = None

    @classmethod
    def from_pretrained(cls, model: str | Path, *, trust_remote_code: bool = False, **settings: Any) -> ColBERT:
        """A retriever without an index, for `rerank` and encoding.

        Args:
            model: Local checkpoint folder or Hugging Face id.
            trust_remote_code: Let the checkpoint run its own code (off by default).
            **settings: `EncoderConfig` fields to override, e.g. `precision="bfloat16"`.
        """
        return cls(Encoder.from_pretrained(model, trust_remote_code=trust_remote_code, **settings))

    @classmethod
    def create(
        cls,
        location: Location | None,
        *,
        model: str | Path,
        index_type: IndexType = "auto",
        plaid: PlaidConfig | None = None,
        pool_factor: int = 1,
        lexical: bool = True,
        exist_ok: bool = False,
        chunking: Chunking | None = _SPLIT,
        index_config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
        trust_remote_code: bool = False,
        **settings: Any,
    ) -> ColBERT:
        """Create a new, empty index at `location` for `model`.

        Args:
            location: An index folder (new or empty), or a `QdrantConfig` naming a Qdrant
                collection to create (a server, a cluster, local mode or Qdrant Edge); the
                folder settings (index_type, plaid, pool_factor, index_config) are then a
                `ConfigError`. None: a temporary folder, removed by `close` or when this
                retriever is garbage-collected.
            index_type: "exact" (float16 vectors, every token scored), "plaid" (compressed
                to ~36 B/token at dim 128, PLAID search) or "auto": exact while small, plaid
                from `compression.AUTO_PLAID_TOKENS` token vectors (~2,000 passages) on.
            plaid: How a plaid index compresses (nbits, centroids); see `PlaidConfig`.
            pool_factor: Store ~1 / pool_factor of each document's token vectors, merging
                similar ones: a smaller, faster index at some cost in quality.
            lexical: Keep a full-text index (word lists for BM25) of passages for hybrid (default) search.
            exist_ok: Open the index at `location` if there is one.
            chunking: How texts longer than the model reads are split into passages
                (`Chunking()`, the default); None stores them cut at `doc_maxlen`, with a
                warning counting them.

        Raises:
            IndexExistsError: an index exists at `location` and `exist_ok` is False.
            CheckpointError: the model cannot be loaded.
        """
        misplaced = sorted(set(settings) & {f.name for f in dataclasses.fields(PlaidConfig)})
        if misplaced:
            msg = f"{', '.join(misplaced)} is a PlaidConfig setting: pass plaid=PlaidConfig({misplaced[0]}=...)"
            raise ConfigError(msg)
        if exist_ok and location is not None and store_exists(location):
            return cls.open(
                location,
                model=model,
                chunking=chunking,
                index_config=index_config,
                search_config=search_config,
                trust_remote_code=trust_remote_code,
                **settings,
            )
        encoder = Encoder.from_pretrained(model, trust_remote_code=trust_remote_code, **settings)
        folder = None
        if location is None:
            location = folder = Path(tempfile.mkdtemp(prefix="colbert-"))
        store = create_store(
            location,
            model=encoder.fingerprint.to_dict(),
            dim=encoder.dim,
            index_type=index_type,
            plaid=plaid,
            pool_factor=pool_factor,
            lexical=lexical,
            config=index_config,
            search_config=search_config,
        )
        colbert = cls(encoder, store, chunking=chunking)
        if folder is not None:
            colbert._remove_folder = weakref.finalize(colbert, shutil.rmtree, folder, True)
        return colbert

    @classmethod
    def open(
        cls,
        location: Location,
        *,
        model: str | Path | None = None,
        chunking: Chunking | None = _SPLIT,
        index_config: IndexConfig | None = None,
        search_config: SearchConfig | None = None,
        trust_remote_code: bool = False,
        **settings: Any,
    ) -> ColBERT:
        """Open the index at `location` (a folder, or a `QdrantConfig`) with the model it
        was built with.

        Args:
            model: The checkpoint to encode queries with; by default the one recorded in
                the index. It must be the same model (e.g. its local copy).
            chunking: How added texts longer than the model reads are split (see `create`).
            **settings: Runtime `EncoderConfig` fields (batch_size, precision, ...).

        Raises:
            IndexNotFoundError, IndexCorruptError: no index, or a damaged one.
            DimensionMismatchError, ModelMismatchError: `model` is not the index's model.
        """
        store = open_store(location, config=index_config, search_config=search_config)
        try:
            encoder = Encoder.for_index(
                store.model, describe(location), model=model, trust_remote_code=trust_remote_code, **settings
            )
        except BaseException:
            store.close()
            raise
        return cls(encoder, store, chunking=chunking)

    @property
    def index(self) -> Store:
        """The store behind this retriever (an `Index` unless another backend was given)."""
        if self._store is None:
            msg = "this retriever has no index (built with from_pretrained); use ColBERT.create or ColBERT.open"
            raise ConfigError(msg)
        return self._store

    def __len__(self) -> int:
        return len(self.index)

    def __repr__(self) -> str:
        where = f"index={str(getattr(self._store, 'path', self._store))!r}" if self._store is not None else "no index"
        return f"ColBERT(model={self.encoder.fingerprint.name!r}, dim={self.encoder.dim}, {where})"

    def info(self) -> IndexInfo:
        """The index's `IndexInfo` (counts, size, type, model); see `Index.info`."""
        return self.index.info()

    def close(self) -> None:
        """Release the store (a Qdrant client; a local-mode folder stays locked until then);
        a temporary index (created at None) is deleted."""
        if self._store is not None:
            self._store.close()
        if self._remove_folder is not None:
            self._remove_folder()

    def add(
        self,
        texts: Iterable[str],
        *,
        ids: Iterable[str] | None = None,
        metadata: Iterable[dict[str, Any] | None] | None = None,
    ) -> list[str]:
        """Encode and store documents, all or nothing; return their ids.

        A text longer than the model reads is stored as passages (see `chunking`); the
        document stays the unit of `get`, `delete` and `upsert`. Works through any iterable
        in chunks of `IndexConfig.docs_per_segment` rows (passages), so memory does not grow
        with the corpus.

        Args:
            texts: Document texts (non-blank strings).
            ids: One unique string per text; random ones are generated if omitted.
            metadata: One JSON-serialisable dict (or None) per text.

        Raises:
            ConfigError: a blank text, a non-string, mismatched lengths, bad metadata.
            DuplicateIdError: an id repeated, or already in the index.
        """
        return self._write(texts, ids, metadata, upsert=False)

    def add_documents(self, documents: Iterable[Document], *, upsert: bool = False) -> list[str]:
        """Encode and store `Document`s (id, text, metadata), all or nothing; return their ids.

        The same as `add` (or `upsert` with `upsert=True`) for a stream of records, e.g.
        `colbert_retriever.text.corpus.read_corpus(path)`; the stream is read once, chunk by chunk.
        """
        if isinstance(documents, (str, Document)) or not isinstance(documents, Iterable):
            msg = f"documents must be an iterable of Document, got {type(documents).__name__}"
            raise ConfigError(msg)
        total = len(documents) if isinstance(documents, Sized) else None
        return self._add_stream(iter(documents), upsert=upsert, total=total)

    def upsert(
        self,
        texts: Iterable[str],
        *,
        ids: Iterable[str],
        metadata: Iterable[dict[str, Any] | None] | None = None,
    ) -> list[str]:
        """Like `add`, but an id already in the index replaces that document (all its passages)."""
        return self._write(texts, ids, metadata, upsert=True)

    def delete(self, ids: Sequence[str]) -> None:
        """Remove documents by id (all must exist), every passage of each; other ids are untouched."""
        self.index.write((), delete=ids)

    def get(self, ids: Sequence[str]) -> list[Document]:
        """The stored documents for `ids`, in order, each with its whole text."""
        return self.index.get(ids)

    def search(
        self,
        query: str,
        *,
        k: int = 10,
        filters: Filter | None = None,
        unit: Unit = "document",
        mode: Mode | None = None,
        highlights: bool = False,
    ) -> list[Hit]:
        """The `k` best documents for `query` by MaxSim (exact, or PLAID's stages in a
        compressed index), fused with BM25 in hybrid mode. A document stored as passages is
        scored from them; its hit carries the passage that scored best (`text`, `start`:`end`).

        Args:
            query: The question.
            k: Number of hits (fewer only when fewer documents pass the filters).
            filters: A filter-language object, e.g. `{"lang": "en", "year": {"$gte": 2020}}`
                (see `colbert_retriever.filters` for every operator), or a callable taking a
                metadata dict and returning a bool (slow on large indexes); applied before
                ranking.
            unit: "document" (default), or "passage": the k best passages, several of one
                document among them.
            mode: "hybrid" (late interaction and BM25 fused, see `SearchConfig.fusion`),
                "late" or "lexical"; None (default): hybrid if the index has a full-text
                index (`create(lexical=True)`, the default), else late.
            highlights: Add each hit's `explanation` (what every query token matched, with
                its span in `text`; `hit.highlights` merges the spans) for citations.

        Raises:
            ConfigError: a blank query, k < 1, a bad filter (naming the operator) or mode.
        """
        if not isinstance(query, str):
            msg = f"query must be a string, got {type(query).__name__}; use search_batch for many"
            raise ConfigError(msg)
        return self.search_batch([query], k=k, filters=filters, unit=unit, mode=mode, highlights=highlights)[0]

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        k: int = 10,
        filters: Filter | None = None,
        unit: Unit = "document",
        mode: Mode | None = None,
        highlights: bool = False,
    ) -> list[list[Hit]]:
        """`search` for many queries at once (one pass over the index); one list per query."""
        queries = check_texts(queries, "queries")
        store = self.index
        reader = store.reader(filters, vectors=highlights)  # one state for the search and its highlights
        vectors = self.encoder.encode_queries(queries)
        found = search(reader, vectors, k=k, config=store.search_config, unit=unit, mode=mode, texts=queries)
        if not highlights:
            return found
        return [
            [dataclasses.replace(hit, explanation=self._explain(reader, q, tokens, hit)) for hit in hits]
            for q, tokens, hits in zip(vectors, map(self.encoder.query_tokens, queries), found, strict=True)
        ]

    def explain(self, query: str, doc_id: str) -> Explanation:
        """Why `doc_id` matches `query`: for each query token, its best token in the
        document's best passage, that token's span, their similarity and its share.

        The similarities sum to the passage's MaxSim: in an exact index, exactly the
        `passage_score` a search gives it (float rounding aside); in a plaid index, the
        MaxSim against the decompressed vectors, which the search's final stage also scores
        (it divides by stored float16 norms, so the two differ in the third decimal).

        Raises:
            DocumentNotFoundError: `doc_id` is not in the index.
        """
        check_texts([query], "queries")
        vectors = self.encoder.encode_queries([query])[0]
        return explain(self.encoder, self.index.reader(), vectors, self.encoder.query_tokens(query), doc_id, None)

    def _explain(self, reader: Reader, vectors: np.ndarray, tokens: list[str], hit: Hit) -> Explanation:
        return explain(self.encoder, reader, vectors, tokens, hit.doc_id, [hit.passage])

    def rerank(self, query: str, documents: Sequence[str], *, k: int | None = None) -> list[RerankHit]:
        """Score `documents` against `query` by MaxSim, without an index.

        Returns the top `k` (all by default), best first; each hit's `position` is the
        document's index in `documents`.
        """
        if not isinstance(query, str):
            msg = f"query must be a string, got {type(query).__name__}"
            raise ConfigError(msg)
        documents = check_texts(documents, "documents")
        if k is not None and (isinstance(k, bool) or not isinstance(k, int) or k < 1):
            msg = f"k must be a positive integer or None, got {k!r}"
            raise ConfigError(msg)
        if not documents:
            return []
        query_vectors = self.encoder.encode_queries([query])
        doc_vectors = self.encoder.encode_documents(documents)
        offsets = np.zeros(len(documents) + 1, dtype=np.int64)
        np.cumsum([len(v) for v in doc_vectors], out=offsets[1:])
        scores = maxsim(pad_queries(query_vectors), np.concatenate(doc_vectors), offsets)[0]
        order = sorted(range(len(documents)), key=lambda i: (-scores[i], i))[:k]
        n_tokens = len(query_vectors[0])
        hits = [(i, float(scores[i])) for i in order]
        return [RerankHit(i, score, score / n_tokens, rank, documents[i]) for rank, (i, score) in enumerate(hits, 1)]

    def _write(self, texts: Iterable[str], ids: Iterable[str] | None, metadata: Any, *, upsert: bool) -> list[str]:
        total = check_columns(texts, ids, metadata)
        return self._add_stream(zip_documents(texts, ids, metadata), upsert=upsert, total=total)

    def _add_stream(self, documents: Iterator[Any], *, upsert: bool, total: int | None) -> list[str]:
        store = self.index
        written: list[str] = []
        batches = encode_documents(
            self.encoder,
            documents,
            self.chunking,
            size=store.docs_per_batch,
            total=total,
            upsert=upsert,
            written=written,
        )
        store.write(batches, upsert=upsert)
        return written
