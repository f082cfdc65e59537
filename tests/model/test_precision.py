"""Float types by what the CPU does natively: the policy (forced by monkeypatching the
hardware checks) and that both scoring paths rank alike."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

import colbert_retriever.devices as devices
import colbert_retriever.model.precision as precision
from colbert_retriever import ConfigError, DocumentBatch, Encoder, Index, SearchConfig


@pytest.mark.parametrize("units", [(True, False), (False, True), (False, False)])
def test_auto_encodes_in_bfloat16_only_with_bf16_units(
    monkeypatch: pytest.MonkeyPatch, units: tuple[bool, bool]
) -> None:
    avx512_bf16, amx = units
    monkeypatch.setattr(torch.cpu, "_is_avx512_bf16_supported", lambda: avx512_bf16, raising=False)
    monkeypatch.setattr(torch.cpu, "_is_amx_tile_supported", lambda: amx, raising=False)
    assert precision.encoding_precision("auto") == ("bfloat16" if any(units) else "float32")
    assert precision.encoding_precision("float32") == "float32"
    assert precision.encoding_precision("bfloat16") == "bfloat16"


def test_the_encoder_says_what_auto_chose(checkpoints) -> None:
    encoder = Encoder.from_pretrained(checkpoints["stanford"], show_progress=False)
    assert encoder.config.precision == "auto"
    assert encoder.precision == precision.encoding_precision("auto")
    with pytest.raises(ConfigError, match="precision"):
        Encoder.from_pretrained(checkpoints["stanford"], precision="float16")
    with pytest.raises(ConfigError, match="scoring_dtype"):
        SearchConfig(scoring_dtype="bfloat16")  # type: ignore[arg-type]


@pytest.mark.parametrize("index_type", ["exact", "plaid"])
def test_float16_and_float32_scoring_rank_alike(tmp_path: Path, index_type: str) -> None:
    rng = np.random.default_rng(0)
    dim = 32

    def unit(x: np.ndarray) -> np.ndarray:
        return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)

    vectors = [unit(rng.standard_normal((int(rng.integers(5, 30)), dim))) for _ in range(300)]
    ids = [f"d{i}" for i in range(300)]
    model = {"name": "test", "format": "transformers", "dim": dim, "digest": "x", "layout": {}}
    index = Index.create(tmp_path / "idx", model=model, dim=dim, index_type=index_type)
    index.write([DocumentBatch(ids=ids, texts=ids, metadata=[{}] * 300, vectors=vectors)])
    queries = [unit(v[:8] + 0.3 * rng.standard_normal((min(8, len(v)), dim))) for v in vectors[:5]]
    found = {}
    for dtype in ("float16", "float32"):
        opened = Index.open(index.path, search_config=SearchConfig(scoring_dtype=dtype))
        found[dtype] = opened.search(queries, k=10)
    for half, single in zip(found["float16"], found["float32"], strict=True):
        assert half[0].doc_id == single[0].doc_id
        np.testing.assert_allclose([h.score for h in half[:3]], [h.score for h in single[:3]], atol=2e-2)


def test_device_settings(checkpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    for bad in ("gpu", "cuda:x", 0):
        with pytest.raises(ConfigError, match="device must be"):
            SearchConfig(device=bad)  # type: ignore[arg-type]
    assert devices.resolve_device("cpu") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ConfigError, match="torch sees no CUDA GPU"):
        Encoder.from_pretrained(checkpoints["stanford"], device="cuda", show_progress=False)
    encoder = Encoder.from_pretrained(checkpoints["stanford"], device="auto", show_progress=False)
    assert encoder.device == torch.device("cpu")
    assert devices.scoring_dtype("auto", torch.device("cuda")) == torch.float16  # half math is native on GPUs


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU here")
def test_gpu_encoding_and_exact_search_match_the_cpu(checkpoints, tmp_path: Path) -> None:
    texts = ["the cat sat on the mat.", "late interaction search is fast.", "a plant turns light into energy."]
    cpu = Encoder.from_pretrained(checkpoints["stanford"], device="cpu", precision="float32", show_progress=False)
    gpu = Encoder.from_pretrained(checkpoints["stanford"], device="cuda", precision="float32", show_progress=False)
    for a, b in zip(cpu.encode_documents(texts), gpu.encode_documents(texts), strict=True):
        np.testing.assert_allclose(a, b, atol=1e-4)
    index = Index.create(tmp_path / "i", model=cpu.fingerprint.to_dict(), dim=cpu.dim, index_type="exact")
    index.write(
        [DocumentBatch(ids=["a", "b", "c"], texts=texts, metadata=[{}] * 3, vectors=cpu.encode_documents(texts))]
    )
    queries = cpu.encode_queries(["where did the cat sit?"])
    on_cpu = index.search(queries, k=3)[0]
    on_gpu = Index.open(tmp_path / "i", search_config=SearchConfig(device="cuda")).search(queries, k=3)[0]
    assert [h.doc_id for h in on_gpu] == [h.doc_id for h in on_cpu]
    np.testing.assert_allclose([h.score for h in on_gpu], [h.score for h in on_cpu], atol=2e-3)


def test_int8_quantises_every_linear_layer_once_and_keeps_the_vector_space(checkpoints) -> None:
    exact = Encoder.from_pretrained(checkpoints["stanford"], precision="float32", show_progress=False)
    int8 = Encoder.from_pretrained(checkpoints["stanford"], precision="int8", show_progress=False)
    kinds = {type(m).__module__ for m in int8._model.modules() if type(m).__name__ == "Linear"}
    assert kinds == {"torch.ao.nn.quantized.dynamic.modules.linear"}  # every linear layer, projection included
    assert not any(isinstance(m, torch.nn.Linear) for m in int8._model.modules())
    texts = ["the cat sat on the mat", "late interaction keeps one vector per token, and search is exact"]
    for a, b in zip(exact.encode_documents(texts), int8.encode_documents(texts), strict=True):
        assert a.shape == b.shape
        assert not np.array_equal(a, b)  # computed in int8 ...
        assert float(np.mean(np.sum(a * b, axis=1))) > 0.9  # ... close to the float32 vectors
    # the same model: an index built in one precision is searched with queries in the other
    assert int8.fingerprint.digest == exact.fingerprint.digest
    assert (int8.fingerprint.precision, exact.fingerprint.precision) == ("int8", "float32")
    with pytest.raises(ConfigError, match="CPU only"):
        precision.encoding_precision("int8", torch.device("cuda"))
