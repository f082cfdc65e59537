"""The README's Python quickstart runs as written (with the offline model in place of the hub id)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[1] / "README.md"


@pytest.mark.real_model
def test_python_quickstart_runs(minilm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    section = README.read_text(encoding="utf-8").split("## Quickstart in Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    assert "colbert-ir/colbertv2.0" in code
    code = code.replace('"colbert-ir/colbertv2.0"', repr(str(minilm_path))).replace("./my-index", str(tmp_path / "idx"))
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out.split()
    assert printed[:2] == ["1", "colbert"]  # the topic filter leaves the one "ir" document


@pytest.mark.real_model
@pytest.mark.parametrize("edge", [False, True], ids=["local-mode", "edge"])
def test_python_quickstart_runs_on_qdrant_by_changing_one_argument(
    minilm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], edge: bool
) -> None:
    pytest.importorskip("qdrant_edge" if edge else "qdrant_client")
    section = README.read_text(encoding="utf-8").split("## Quickstart in Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    code = code.replace('"colbert-ir/colbertv2.0"', repr(str(minilm_path)))
    location = f"QdrantConfig(path={str(tmp_path / 'qdrant')!r}, edge={edge}, show_progress=False)"
    code = "from colbert_retriever import QdrantConfig\n" + code.replace('"./my-index"', location)
    exec(compile(code, str(README), "exec"), {})
    assert capsys.readouterr().out.split()[:2] == ["1", "colbert"]


@pytest.mark.real_model
def test_long_documents_example_runs(minilm_path: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from colbert_retriever import ColBERT

    section = README.read_text(encoding="utf-8").split("## Long documents, passages and citations", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.DOTALL).group(1)
    filler = " ".join(f"Chapter {i} describes the steel, the rivets and the paint." for i in range(60))
    report = f"{filler}\n\nThe tower was finished in March 1889, for the World's Fair.\n\n{filler}"
    retriever = ColBERT.create(tmp_path / "idx", model=minilm_path, show_progress=False)
    exec(compile(code, str(README), "exec"), {"retriever": retriever, "report_text": report, "new_text": "short"})
    printed = capsys.readouterr().out
    assert "finished" in printed  # a query token matched its word
    assert len(retriever) == 0  # the example ends by deleting the document
