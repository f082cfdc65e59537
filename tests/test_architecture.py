"""The import rules ARCHITECTURE.md states, checked on the source: every import of every
module of the package (at module level or inside a function), read with `ast`."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "colbert_retriever"
ARCHITECTURE = Path(__file__).resolve().parents[1] / "ARCHITECTURE.md"

BASICS = {
    "_version",
    "atomic",
    "bm25",
    "config",
    "devices",
    "errors",
    "filters",
    "maxsim",
    "metrics",
    "results",
    "validation",
}
FRONT_ENDS = {"cli", "service", "__main__"}
FRONT_DOOR = {"retriever", "explain"}


@dataclass(frozen=True)
class Import:
    module: str  # the importer, dotted under the package: "stores.folder.index"
    target: str  # what it imports, dotted under the package ("" for the package root), or a top-level library
    function: str | None  # the function it is imported in, None at module level

    @property
    def internal(self) -> bool:
        return self.target == "" or not self.target.startswith("<")


def _part(dotted: str) -> str:
    """The part a module belongs to: its first name, "stores.folder" and "stores.qdrant" apart."""
    parts = dotted.split(".")
    return ".".join(parts[:2]) if parts[0] == "stores" and len(parts) > 1 else parts[0]


def _imports() -> list[Import]:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE).with_suffix("").parts).removesuffix(".__init__")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found.extend(_walk(tree, module, None))
    return found


def _walk(node: ast.AST, module: str, function: str | None) -> list[Import]:
    found = []
    for child in ast.iter_child_nodes(node):
        if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
            found.extend(_walk(child, module, child.name))
            continue
        names = []
        if isinstance(child, ast.Import):
            names = [alias.name for alias in child.names]
        elif isinstance(child, ast.ImportFrom) and child.module and not child.level:
            names = [child.module] + [f"{child.module}.{alias.name}" for alias in child.names]
        for name in names:
            if name == "colbert_retriever" or name.startswith("colbert_retriever."):
                found.append(Import(module, name.removeprefix("colbert_retriever").removeprefix("."), function))
            else:
                found.append(Import(module, f"<{name.split('.')[0]}>", function))
        found.extend(_walk(child, module, function))
    return found


IMPORTS = _imports()


def _existing(target: str) -> bool:
    """Whether `target` names a module or package (not a name inside one)."""
    base = PACKAGE.joinpath(*target.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _violations(importers: set[str], forbidden: set[str]) -> list[Import]:
    return [
        imp
        for imp in IMPORTS
        if imp.internal and imp.target and _existing(imp.target)
        and _part(imp.module) in importers and _part(imp.target) in forbidden
    ]  # fmt: skip


def test_the_reader_finds_imports_of_every_kind() -> None:
    """The checks below can fail: the walk sees module-level, lazy and library imports."""
    pairs = {(imp.module, imp.target, imp.function) for imp in IMPORTS}
    assert ("retriever", "pipeline.search", None) in pairs
    assert ("stores.folder.index", "pipeline.search", "search") in pairs
    assert ("model.encoder", "<torch>", None) in pairs
    assert _part("stores.folder.index") == "stores.folder"


def test_basics_import_no_part_above_them() -> None:
    above = {"model", "text", "pipeline", "stores", "stores.folder", "stores.qdrant", "corpus"}
    assert _violations(BASICS, above | FRONT_DOOR | FRONT_ENDS) == []


def test_the_model_side_knows_no_store_pipeline_or_front_end() -> None:
    forbidden = {"pipeline", "stores", "stores.folder", "stores.qdrant", "text"} | FRONT_DOOR | FRONT_ENDS
    assert _violations({"model"}, forbidden) == []


def test_the_pipeline_sees_stores_only_through_the_protocol() -> None:
    forbidden = {"model", "text", "stores.folder", "stores.qdrant"} | FRONT_DOOR | FRONT_ENDS
    assert _violations({"pipeline"}, forbidden) == []
    libraries = {imp.target for imp in IMPORTS if _part(imp.module) == "pipeline" and not imp.internal}
    assert not libraries & {"<transformers>", "<faiss>", "<qdrant_client>", "<sqlite3>"}


def test_stores_need_no_model_and_never_import_each_other() -> None:
    assert _violations({"stores.folder"}, {"stores.qdrant", "model", "text"} | FRONT_DOOR | FRONT_ENDS) == []
    assert _violations({"stores.qdrant"}, {"stores.folder", "model", "text"} | FRONT_DOOR | FRONT_ENDS) == []
    for imp in IMPORTS:
        if imp.module.startswith("stores"):
            assert imp.target != "<transformers>", imp


def test_a_store_calls_the_pipeline_only_from_its_search_convenience() -> None:
    """`Index.search` and `QdrantStore.search` hand their reader to the pipeline, importing it
    when called; nothing else in a store reaches up to it."""
    upward = [imp for imp in IMPORTS if imp.module.startswith("stores") and imp.target.startswith("pipeline")]
    assert upward
    assert {(imp.module, imp.function) for imp in upward} == {
        ("stores.folder.index", "search"),
        ("stores.qdrant.store", "search"),
    }


def test_only_front_ends_import_front_ends() -> None:
    importers = {_part(imp.module) for imp in IMPORTS if imp.internal and _part(imp.target) in FRONT_ENDS}
    assert importers <= FRONT_ENDS


@pytest.mark.parametrize("folder", ["model", "text", "pipeline", "stores/folder", "stores/qdrant", "cli", "service"])
def test_architecture_md_names_every_part(folder: str) -> None:
    assert (PACKAGE / folder).is_dir()
    assert f"`{folder}/`" in ARCHITECTURE.read_text(encoding="utf-8")
