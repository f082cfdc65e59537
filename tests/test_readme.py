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
