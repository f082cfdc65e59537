"""The ONNX Runtime path (the `onnx` extra): exported from the loaded checkpoint, it gives
the reference's vectors in float32 for every family, and refuses what it cannot export."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from colbert_retriever import CheckpointError, ConfigError, Encoder

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")

FAMILIES = Path(__file__).resolve().parents[1] / "fixtures" / "families"
TEXTS = json.loads((FAMILIES / "texts.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("name", ["bert", "modernbert", "xlmr", "stanford-bin"])
def test_float32_reproduces_the_reference(name: str) -> None:
    encoder = Encoder.from_pretrained(FAMILIES / name, precision="float32", runtime="onnxruntime", show_progress=False)
    expected = np.load(FAMILIES / name / "expected.npz", allow_pickle=False)
    queries = encoder.encode_queries(TEXTS["queries"])
    np.testing.assert_allclose(np.stack(queries), expected["query_embeddings"], atol=1e-5)
    documents = np.concatenate(encoder.encode_documents(TEXTS["documents"]))
    np.testing.assert_allclose(documents, expected["document_embeddings"], atol=1e-5)
    torch_encoder = Encoder.from_pretrained(FAMILIES / name, precision="float32", show_progress=False)
    assert encoder.fingerprint.digest == torch_encoder.fingerprint.digest  # the same vector space
    assert encoder.fingerprint.precision == "onnxruntime float32"


def test_int8_is_auto_and_stays_close() -> None:
    exact = Encoder.from_pretrained(FAMILIES / "bert", precision="float32", show_progress=False)
    int8 = Encoder.from_pretrained(FAMILIES / "bert", runtime="onnxruntime", show_progress=False)
    assert int8.precision == "int8"  # what "auto" means with ONNX Runtime
    for a, b in zip(exact.encode_documents(TEXTS["documents"]), int8.encode_documents(TEXTS["documents"]), strict=True):
        assert a.shape == b.shape
        assert not np.array_equal(a, b)
        assert float(np.mean(np.sum(a * b, axis=1))) > 0.9


def test_what_cannot_run_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ConfigError, match="bfloat16"):
        Encoder.from_pretrained(FAMILIES / "bert", precision="bfloat16", runtime="onnxruntime")

    def fails(*args: object, **kwargs: object) -> None:
        msg = "unsupported operator aten::something"
        raise RuntimeError(msg)

    monkeypatch.setattr(torch.onnx, "export", fails)
    with pytest.raises(CheckpointError, match=r"cannot export Bert .*aten::something"):
        Encoder.from_pretrained(FAMILIES / "bert", runtime="onnxruntime", show_progress=False)
    monkeypatch.setitem(sys.modules, "onnxruntime", None)
    with pytest.raises(ConfigError, match=r"colbert-retriever\[onnx\]"):
        Encoder.from_pretrained(FAMILIES / "bert", runtime="onnxruntime", show_progress=False)


def test_an_export_is_kept_only_where_a_cache_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    cache = tmp_path / "onnx"
    first = Encoder.from_pretrained(
        FAMILIES / "bert", runtime="onnxruntime", onnx_cache=str(cache), show_progress=False
    )
    (kept,) = cache.iterdir()
    expected = first.encode_queries(TEXTS["queries"])

    def fails(*args: object, **kwargs: object) -> None:
        msg = "exported although the cache holds the model"
        raise AssertionError(msg)

    with monkeypatch.context() as patch:
        patch.setattr(torch.onnx, "export", fails)
        again = Encoder.from_pretrained(
            FAMILIES / "bert", runtime="onnxruntime", onnx_cache=str(cache), show_progress=False
        )
    np.testing.assert_array_equal(np.stack(again.encode_queries(TEXTS["queries"])), np.stack(expected))
    Encoder.from_pretrained(FAMILIES / "xlmr", runtime="onnxruntime", onnx_cache=str(cache), show_progress=False)
    Encoder.from_pretrained(FAMILIES / "bert", runtime="onnxruntime", precision="float32", onnx_cache=str(cache))
    assert len(list(cache.iterdir())) == 3  # one file per model and precision

    kept.write_bytes(b"not a model")  # damaged: exported again and replaced
    mended = Encoder.from_pretrained(
        FAMILIES / "bert", runtime="onnxruntime", onnx_cache=str(cache), show_progress=False
    )
    np.testing.assert_array_equal(np.stack(mended.encode_queries(TEXTS["queries"])), np.stack(expected))
    assert kept.stat().st_size > 1000

    blocked = tmp_path / "a-file"
    blocked.write_text("")  # a cache "folder" that cannot be made: the encoder still works
    Encoder.from_pretrained(FAMILIES / "bert", runtime="onnxruntime", onnx_cache=str(blocked / "x"))
    assert blocked.read_text() == ""

    with pytest.raises(ConfigError, match=r"onnx_cache .*needs runtime='onnxruntime'"):
        Encoder.from_pretrained(FAMILIES / "bert", onnx_cache=str(cache))
