"""The manifest as typed classes: a round trip, and every malformed field named, never followed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from test_index import DIM, MODEL, batch

from colbert_retriever import Index, IndexCorruptError, IndexVersionError, PlaidConfig
from colbert_retriever.stores.folder.manifest import Manifest, read_manifest, write_manifest


@pytest.fixture
def built(tmp_path: Path) -> Path:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM)
    index.write([batch(["a", "b", "c"])])
    index.delete(["b"])
    return index.path


def test_round_trip_keeps_every_field(built: Path, tmp_path: Path) -> None:
    manifest = read_manifest(built)
    assert (manifest.n_documents, manifest.segments[0].deleted, manifest.generation) == (2, (1,), 2)
    plaid = Manifest(index_type="plaid", model=MODEL, dim=DIM, plaid=PlaidConfig(nbits=4), segments=manifest.segments)
    for original in (manifest, plaid):
        (tmp_path / "copy").mkdir(exist_ok=True)
        write_manifest(tmp_path / "copy", original)
        assert read_manifest(tmp_path / "copy") == original


def _edit(built: Path, change: Callable[[dict[str, Any]], None]) -> None:
    data = json.loads((built / "manifest.json").read_text())
    change(data)
    (built / "manifest.json").write_text(json.dumps(data))


def _set(path: str, value: object) -> Callable[[dict[str, Any]], None]:
    def change(data: dict[str, Any]) -> None:
        *parents, last = path.split(".")
        target: Any = data
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return change


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        ("segments", "x", "manifest.segments must be list"),
        ("dim", "x", "manifest.dim must be int"),
        ("dim", True, "manifest.dim must be int"),
        ("generation", -1, "manifest.generation must be a non-negative integer"),
        ("index_type", "ivf", "manifest.index_type must be one of"),
        ("plaid", {"nbits": 3}, "manifest.plaid is not a PlaidConfig"),
        ("segments.0.files", KeyError, r"manifest.segments\[0\].files is missing"),
        ("segments.0.deleted", [7], r"manifest.segments\[0\].deleted must list rows below n_rows=3"),
        ("segments.0.name", "../../outside/seg", r"manifest.segments\[0\].name names '../../outside/seg'"),
        ("segments.0.name", "/etc", r"not a plain file or folder name"),
        ("segments.0.name", "..", r"not a plain file or folder name"),
        ("retired", ["../x"], "manifest.retired names"),
        ("segments.0.files.doclens\\.npy", None, "must be an object"),
    ],
)
def test_malformed_fields_are_named(built: Path, path: str, value: object, named: str) -> None:
    if path.endswith("doclens\\.npy"):  # a file entry that is not an object

        def change(data: dict[str, Any]) -> None:
            data["segments"][0]["files"]["doclens.npy"] = value

        _edit(built, change)
    else:
        _edit(built, _set(path, value))
    with pytest.raises(IndexCorruptError, match=named):
        Index.open(built)


def test_a_file_name_that_is_a_path_is_refused(built: Path, tmp_path: Path) -> None:
    (tmp_path / "secret.npy").write_bytes(b"not for the index")

    def change(data: dict[str, Any]) -> None:
        files = data["segments"][0]["files"]
        files["../../secret.npy"] = files.pop("doclens.npy")

    _edit(built, change)
    with pytest.raises(IndexCorruptError, match="not a plain file or folder name"):
        Index.open(built)


def test_format_1_is_refused_with_the_fix(built: Path) -> None:
    _edit(built, _set("format_version", 1))  # colbert-retriever 0.1: texts parsed at open, no id index
    with pytest.raises(IndexVersionError, match="rebuild it with this version"):
        Index.open(built)


def test_a_manifest_from_before_the_lexical_side_reads_as_without_one(tmp_path: Path) -> None:
    index = Index.create(tmp_path / "idx", model=MODEL, dim=DIM, lexical=False)
    index.write([batch(["a", "b"])])
    path = tmp_path / "idx" / "manifest.json"
    raw = json.loads(path.read_text())
    del raw["lexical"]
    path.write_text(json.dumps(raw))
    assert read_manifest(tmp_path / "idx").lexical is False
    assert not Index.open(tmp_path / "idx", verify=True).info().lexical


def test_a_lexical_flag_that_disagrees_with_the_segments_is_corruption(tmp_path: Path) -> None:
    Index.create(tmp_path / "idx", model=MODEL, dim=DIM).write([batch(["a", "b"])])
    path = tmp_path / "idx" / "manifest.json"
    raw = json.loads(path.read_text())
    raw["lexical"] = False
    path.write_text(json.dumps(raw))
    with pytest.raises(IndexCorruptError, match="has a full-text index"):
        Index.open(tmp_path / "idx")
