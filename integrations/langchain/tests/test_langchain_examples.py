"""examples/langchain_rag.py: the context handed to the LLM holds the passage that answers."""

from __future__ import annotations

import sys
from pathlib import Path

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models.fake import FakeListLLM

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import langchain_rag


class PromptRecorder(BaseCallbackHandler):
    def __init__(self) -> None:
        self.prompts: list[str] = []

    def on_llm_start(self, serialized, prompts, **kwargs) -> None:
        self.prompts.extend(prompts)


def test_rag_chain_hands_the_answering_passage_to_the_llm(tmp_path: Path) -> None:
    retriever = langchain_rag.build_retriever(tmp_path / "index")
    chain = langchain_rag.build_chain(retriever, FakeListLLM(responses=["ok"]))
    recorder = PromptRecorder()
    assert chain.invoke("Which protocol guarantees ordered delivery?", config={"callbacks": [recorder]}) == "ok"
    (prompt,) = recorder.prompts
    assert "Transmission Control Protocol provides reliable, ordered delivery" in prompt
    assert "Question: Which protocol guarantees ordered delivery?" in prompt


def test_every_search_mode_finds_the_author(tmp_path: Path) -> None:
    retriever = langchain_rag.build_retriever(tmp_path / "index")
    assert langchain_rag.top_by_mode(retriever, "Who wrote Hamlet?") == dict.fromkeys(
        ("hybrid", "late", "lexical"), "shakespeare"
    )
