"""The package as a whole: a light import, one-way imports, nothing POSIX-only at import time."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import colbert_retriever

PACKAGE = Path(colbert_retriever.__file__).parent
HEAVY = ("torch", "transformers", "faiss", "numpy", "qdrant_client")


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.mark.parametrize(
    "code",
    [
        "import colbert_retriever",
        "from colbert_retriever import ColbertRetrieverError, SearchConfig, Hit, QdrantConfig, __version__",
        "from colbert_retriever.cli import main\ntry:\n    main(['--help'])\nexcept SystemExit:\n    pass",
        "from colbert_retriever.cli import main\ntry:\n    main(['search', '--help'])\nexcept SystemExit:\n    pass",
    ],
)
def test_import_and_help_load_no_heavy_library(code: str) -> None:
    loaded = _run(f"{code}\nimport sys\nprint([m for m in {HEAVY!r} if m in sys.modules])")
    assert loaded.splitlines()[-1] == "[]"


def test_heavy_names_load_on_first_use() -> None:
    assert _run("import sys, colbert_retriever\ncolbert_retriever.ColBERT\nprint('torch' in sys.modules)") == "True"
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        colbert_retriever.Nope  # noqa: B018


def test_the_package_imports_without_fcntl() -> None:
    """As on Windows: the writer lock must not need a POSIX module at import time."""
    modules = "colbert_retriever.stores.folder.index, colbert_retriever.cli"
    code = f"import sys\nsys.modules['fcntl'] = None\nimport {modules}\nprint('ok')"
    assert _run(code) == "ok"


def _imports() -> list[tuple[Path, ast.ImportFrom]]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("colbert_retriever"):
                found.append((path, node))
    return found


def test_no_module_imports_the_package_root_or_private_names() -> None:
    problems = []
    for path, node in _imports():
        where = f"{path.relative_to(PACKAGE)}:{node.lineno}"
        if node.module == "colbert_retriever" and path.name != "__init__.py":
            problems.append(f"{where} imports from the package root")
        private = [a.name for a in node.names if a.name.startswith("_") and not a.name.endswith("__")]
        if private:
            problems.append(f"{where} imports private names {private} from {node.module}")
    assert problems == []


def test_storage_and_search_never_import_the_model_side() -> None:
    """Imports flow one way: storage and search need no encoder, CLI or front door."""
    banned = ("colbert_retriever.model.encoder", "colbert_retriever.model.checkpoint", "colbert_retriever.retriever")
    banned += ("colbert_retriever.cli", "colbert_retriever.stores.folder.index", "transformers")
    problems = []
    for path in sorted([*(PACKAGE / "storage").rglob("*.py"), *(PACKAGE / "search").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else []
            names += [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            problems += [f"{path.relative_to(PACKAGE)} imports {n}" for n in names if n.startswith(banned)]
    assert problems == []


def test_no_module_grows_past_400_lines() -> None:
    sizes = {
        str(p.relative_to(PACKAGE)): len(p.read_text(encoding="utf-8").splitlines()) for p in PACKAGE.rglob("*.py")
    }
    assert {name: n for name, n in sizes.items() if n > 400} == {}
