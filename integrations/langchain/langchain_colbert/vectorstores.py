"""`ColBERTVectorStore`: a colbert-retriever index as a LangChain `VectorStore`.

It converts types only: encoding, search, filtering and storage are the core's. A ColBERT
document is many vectors (one per token), so the store embeds with its own model and takes
no `Embeddings`; the searches that take one vector (`*_by_vector`) are not offered.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from langchain_core.documents import Document
from langchain_core.embeddings import Embeddings
from langchain_core.vectorstores import VectorStore

from colbert_retriever import ColBERT, DocumentNotFoundError, Filter, Hit, Mode, QdrantConfig
from langchain_colbert.retrievers import fill_ids


class ColBERTVectorStore(VectorStore):
    """Late-interaction (ColBERT) search behind LangChain's vector-store interface.

    Example:
        .. code-block:: python

            store = ColBERTVectorStore(index_path="./my-index", model="colbert-ir/colbertv2.0")
            store.add_documents(documents)           # ids honoured; an existing id is replaced
            docs = store.similarity_search("what is late interaction?", k=4, filter={"lang": "en"})
            retriever = store.as_retriever(search_type="mmr", search_kwargs={"k": 4})

    Args:
        index_path: An index folder or a `QdrantConfig`; the index there is opened, or
            created (with `model`) if there is none. None: a temporary folder, deleted by
            `close` or when the store is garbage-collected.
        model: A checkpoint folder or Hugging Face id; needed to create an index, and by
            default the one recorded in an existing index.
        colbert: A core retriever to wrap instead (then give neither of the above).
        mode: "hybrid", "late" or "lexical" (see `ColBERT.search`); None: the index's default.

    Results are the stored documents, whole, so writing one back never loses text:
    `page_content` is the stored text and `metadata` the stored metadata; where the
    document is stored as several passages, the metadata also says which one scored
    (`passage`, and its span `start`:`end` in `page_content`), keys that then come along
    if the document is written back. (`ColBERTRetriever` returns the passage itself, with
    the result fields, for prompts.) Filters are the core's filter language, e.g.
    `{"year": {"$gte": 2020}}`. Relevance scores are `Hit.normalized_score`, the mean best
    cosine per query token (in [0, 1] in practice) in every search mode.
    """

    def __init__(
        self,
        index_path: str | Path | QdrantConfig | None = None,
        model: str | Path | None = None,
        *,
        colbert: ColBERT | None = None,
        mode: Mode | None = None,
    ) -> None:
        if colbert is not None:
            if index_path is not None or model is not None:
                msg = "give either colbert= or index_path/model, not both"
                raise ValueError(msg)
        elif model is None:
            if index_path is None:
                msg = "ColBERTVectorStore needs model= to create an index (or index_path= of an existing one)"
                raise ValueError(msg)
            colbert = ColBERT.open(index_path)
        else:
            colbert = ColBERT.create(index_path, model=model, exist_ok=True)
        self.colbert = colbert
        self.mode = mode

    @property
    def embeddings(self) -> Embeddings | None:
        """None: the store encodes with its own ColBERT model."""
        return None

    def close(self) -> None:
        """Release the index (and delete it if it lives in a temporary folder)."""
        self.colbert.close()

    def add_texts(
        self,
        texts: Iterable[str],
        metadatas: list[dict[Any, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        **kwargs: Any,
    ) -> list[str]:
        """Encode and store `texts`, all or nothing; return their ids.

        Given ids are kept and the missing ones (None, or no `ids`) are generated; a text
        whose id is already stored replaces that document (upsert).
        """
        _no_extra("add_texts", kwargs)
        texts = list(texts)
        given: list[str | None] = list(ids) if ids is not None else [None] * len(texts)
        if len(given) != len(texts):
            msg = f"got {len(given)} ids for {len(texts)} texts"
            raise ValueError(msg)
        return self.colbert.upsert(texts, ids=fill_ids(given), metadata=metadatas)

    def delete(self, ids: list[str] | None = None, **kwargs: Any) -> bool | None:
        """Delete documents by id (ids not stored are skipped); None deletes every document."""
        _no_extra("delete", kwargs)
        index = self.colbert.index
        index.write((), delete=index.doc_ids() if ids is None else list(ids), missing_ok=True)
        return True

    def get_by_ids(self, ids: Sequence[str], /) -> list[Document]:
        """The stored documents (whole texts) among `ids`, in order; missing ids are skipped."""
        found = []
        for doc_id in dict.fromkeys(ids):
            try:
                found.extend(self.colbert.get([doc_id]))
            except DocumentNotFoundError:
                continue
        return [Document(id=doc.doc_id, page_content=doc.text, metadata=doc.metadata) for doc in found]

    def similarity_search(self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any) -> list[Document]:
        """The `k` best documents for `query` (their best passages)."""
        return [doc for doc, _ in self.similarity_search_with_score(query, k, filter, **kwargs)]

    def similarity_search_with_score(
        self, query: str, k: int = 4, filter: Filter | None = None, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        """The `k` best documents with their scores (`Hit.score`: raw MaxSim in late search)."""
        hits = self._search(query, k, filter, kwargs)
        return list(zip(self._documents(hits), [hit.score for hit in hits], strict=True))

    def _similarity_search_with_relevance_scores(
        self, query: str, k: int = 4, **kwargs: Any
    ) -> list[tuple[Document, float]]:
        filter = kwargs.pop("filter", None)
        hits = self._search(query, k, filter, kwargs)
        return list(zip(self._documents(hits), [hit.normalized_score for hit in hits], strict=True))

    def max_marginal_relevance_search(
        self,
        query: str,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        filter: Filter | None = None,
        **kwargs: Any,
    ) -> list[Document]:
        """`k` documents chosen from the best `fetch_k` for relevance and diversity.

        Diversity is measured with the documents' own token vectors: two passages are
        as similar as their symmetric MaxSim (each token's best cosine in the other,
        averaged both ways); relevance is `Hit.normalized_score` (late interaction, in
        every mode). `lambda_mult` 1 is pure relevance, 0 pure diversity.
        """
        hits = self._search(query, max(k, fetch_k), filter, kwargs)
        if not hits:
            return []
        relevance = np.array([hit.normalized_score for hit in hits])
        tokens = [self._passage_vectors(hit) for hit in hits]
        chosen = [0]
        while len(chosen) < min(k, len(hits)):
            best, best_value = -1, -np.inf
            for i in range(len(hits)):
                if i in chosen:
                    continue
                redundancy = max(_similarity(tokens[i], tokens[j]) for j in chosen)
                value = lambda_mult * relevance[i] - (1 - lambda_mult) * redundancy
                if value > best_value:
                    best, best_value = i, value
            chosen.append(best)
        return self._documents([hits[i] for i in chosen])

    @classmethod
    def from_texts(
        cls,
        texts: list[str],
        embedding: Embeddings | None = None,
        metadatas: list[dict[str, Any]] | None = None,
        *,
        ids: list[str] | None = None,
        index_path: str | Path | QdrantConfig | None = None,
        model: str | Path | None = None,
        **kwargs: Any,
    ) -> ColBERTVectorStore:
        """A store at `index_path` (see the class) holding `texts`. `embedding` must be
        None: ColBERT encodes with `model`. Other keyword arguments: `mode`."""
        if embedding is not None:
            msg = "ColBERTVectorStore encodes with its ColBERT model: pass model=..., not an Embeddings object"
            raise ValueError(msg)
        store = cls(index_path, model, **kwargs)
        store.add_texts(texts, metadatas, ids=ids)
        return store

    def _search(self, query: str, k: int, filter: Filter | None, kwargs: dict[str, Any]) -> list[Hit]:
        _no_extra("search", kwargs, allowed=frozenset({"mode"}))
        mode = kwargs.get("mode", self.mode)
        return self.colbert.search(query, k=k, filters=filter, mode=mode)

    def _passage_vectors(self, hit: Hit) -> np.ndarray:
        [(_, vectors)] = self.colbert.index.passages(hit.doc_id, [hit.passage])
        return np.asarray(vectors, dtype=np.float32)

    def _documents(self, hits: list[Hit]) -> list[Document]:
        """Each hit's document, whole, with the passage that scored (see the class)."""
        texts = {}
        for doc_id in dict.fromkeys(hit.doc_id for hit in hits):
            try:
                texts[doc_id] = self.colbert.get([doc_id])[0].text
            except DocumentNotFoundError:  # deleted since the search: the passage is what is left
                continue
        out = []
        for hit in hits:
            text, metadata = texts.get(hit.doc_id, hit.text), dict(hit.metadata)
            if text != hit.text:  # the metadata's own keys win
                span = {"passage": hit.passage, "start": hit.start, "end": hit.end}
                metadata |= {key: value for key, value in span.items() if key not in metadata}
            out.append(Document(id=hit.doc_id, page_content=text, metadata=metadata))
        return out


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Symmetric MaxSim of two passages' token vectors, in [-1, 1]."""
    sims = a @ b.T
    return float((sims.max(axis=1).mean() + sims.max(axis=0).mean()) / 2)


def _no_extra(method: str, kwargs: dict[str, Any], allowed: frozenset[str] = frozenset()) -> None:
    unknown = sorted(set(kwargs) - allowed)
    if unknown:
        msg = f"ColBERTVectorStore.{method} got unexpected keyword arguments: {', '.join(unknown)}"
        raise TypeError(msg)
