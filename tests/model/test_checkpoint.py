from __future__ import annotations

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from colbert_retriever import CheckpointError, Encoder
from colbert_retriever.model.checkpoint import load_checkpoint


def test_formats_are_detected_from_files(checkpoints) -> None:
    found = {name: load_checkpoint(path).format for name, path in checkpoints.items()}
    assert found == {"plain": "transformers", "stanford": "stanford", "pylate": "pylate", "other": "transformers"}


def test_settings_come_from_the_checkpoint_files(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "stanford"
    shutil.copytree(checkpoints["stanford"], folder)
    meta = json.loads((folder / "artifact.metadata").read_text())
    meta.update(query_maxlen=6, doc_maxlen=10, attend_to_mask_tokens=True, mask_punctuation=False)
    (folder / "artifact.metadata").write_text(json.dumps(meta))
    config = load_checkpoint(folder).config
    assert (config.query_maxlen, config.doc_maxlen, config.attend_to_expansion, config.skiplist) == (6, 10, True, ())
    encoder = Encoder.from_pretrained(folder, show_progress=False)
    batch = encoder.tokenize(["cat"], is_query=True)
    assert batch.attention_mask.tolist() == [[1] * 6]  # attends to its [MASK] expansion


def test_stanford_without_metadata_uses_colbert_defaults(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "v1"
    shutil.copytree(checkpoints["stanford"], folder)
    (folder / "artifact.metadata").unlink()
    checkpoint = load_checkpoint(folder)  # found through linear.weight in the weights
    assert checkpoint.format == "stanford"
    # colbert-ai 0.2.22's ColBERTConfig defaults (doc_maxlen 220, not PyLate's 180)
    assert (checkpoint.config.query_maxlen, checkpoint.config.doc_maxlen) == (32, 220)


def test_missing_projection_is_an_error_not_a_random_layer(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "broken"
    shutil.copytree(checkpoints["stanford"], folder)
    weights = load_file(str(folder / "model.safetensors"))
    del weights["linear.weight"]
    save_file(weights, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"linear\.weight"):
        load_checkpoint(folder)
    pylate = tmp_path / "pylate"
    shutil.copytree(checkpoints["pylate"], pylate)
    (pylate / "1_Dense" / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="no weights file"):
        load_checkpoint(pylate)


def test_missing_encoder_weights_are_an_error(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "partial"
    shutil.copytree(checkpoints["plain"], folder)
    weights = load_file(str(folder / "model.safetensors"))
    save_file({k: v for k, v in weights.items() if "layer.1." not in k}, str(folder / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing"):
        Encoder.from_pretrained(folder)


class _Payload:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickled_weights_are_refused(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "pickled"
    shutil.copytree(checkpoints["pylate"], folder)
    (folder / "1_Dense" / "model.safetensors").unlink()
    with open(folder / "1_Dense" / "pytorch_model.bin", "wb") as f:
        pickle.dump({"linear.weight": _Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError, match="weights-only"):
        load_checkpoint(folder)
    # a plain tensor file saved by torch is read (weights_only=True)
    torch.save({"linear.weight": torch.zeros(16, 32)}, folder / "1_Dense" / "pytorch_model.bin")
    assert load_checkpoint(folder).projection[0].weight.shape == (16, 32)


def test_pickled_transformer_weights_are_refused(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "pickled-bert"
    shutil.copytree(checkpoints["plain"], folder)
    (folder / "model.safetensors").unlink()
    with open(folder / "pytorch_model.bin", "wb") as f:
        pickle.dump({"embeddings.word_embeddings.weight": _Payload()}, f, protocol=2)
    with pytest.raises(CheckpointError):
        Encoder.from_pretrained(folder)


def test_missing_folder_and_offline_hub_id(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    with pytest.raises(CheckpointError, match="local folder"):
        load_checkpoint("colbert-ir/colbertv2.0")
    with pytest.raises(CheckpointError):
        load_checkpoint("")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"config\.json"):
        load_checkpoint(tmp_path / "empty")


def test_remote_code_stays_off(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "remote"
    shutil.copytree(checkpoints["plain"], folder)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "modeling_evil.EvilModel"}
    config["model_type"] = "evil"
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "modeling_evil.py").write_text("raise SystemExit('remote code ran')\n")
    with pytest.raises(CheckpointError):
        Encoder.from_pretrained(folder)


def test_local_folder_is_recorded_by_absolute_path(checkpoints, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(checkpoints["plain"].parent)
    checkpoint = load_checkpoint("./plain")
    assert checkpoint.name == str(checkpoints["plain"].resolve())
