"""examples/llama_index_rag.py: the context handed to the LLM holds the passage that answers."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))
import llama_index_rag


def test_query_engine_hands_the_answering_passage_to_the_llm(tmp_path: Path) -> None:
    response = llama_index_rag.build_engine(tmp_path / "index").query("When did astronauts first walk on the moon?")
    assert response.source_nodes[0].node.node_id == "moon-landing"
    # MockLLM echoes the prompt it was given: the context is in it
    assert "Neil Armstrong and Buzz Aldrin walked on the lunar surface" in str(response)


def test_colbert_reranks_a_weak_vector_retriever() -> None:
    response = llama_index_rag.build_reranked_vector_engine().query("Who wrote Hamlet?")
    assert [node.node.ref_doc_id for node in response.source_nodes] == ["shakespeare"]
    assert "Hamlet, Macbeth and Romeo and Juliet" in str(response)
