"""Reading ColBERT checkpoint folders: where the files are, which format, which settings.

Three formats are recognised, from the files alone (never from the model's name):

* ``stanford``: colbert-ai / Stanford ColBERT (e.g. colbert-ir/colbertv2.0). A BERT-family
  encoder whose weights carry ``linear.weight`` (dim x hidden, no bias) beside ``bert.*``;
  settings in ``artifact.metadata`` when present, colbert-ai's defaults otherwise.
* ``pylate``: PyLate / sentence-transformers ColBERT (e.g. answerdotai/answerai-colbert-small-v1).
  ``modules.json`` lists a Transformer then Dense module(s) and no Pooling; settings in
  ``config_sentence_transformers.json``.
* ``transformers``: any other encoder folder (e.g. all-MiniLM-L6-v2): its token states,
  L2-normalised, with no projection and no markers, for zero-shot late interaction.

This module reads files only; `encoder.py` builds the torch modules from what it returns.
"""

from __future__ import annotations

import json
import logging
import pickle  # only for its error type: weights are read with weights_only=True
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from colbert_retriever.config import EncoderConfig
from colbert_retriever.errors import CheckpointError

logger = logging.getLogger(__name__)

CheckpointFormat = Literal["stanford", "pylate", "transformers"]

_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_PUNCTUATION = tuple(string.punctuation)
# The same activations PyLate's Dense module may name; anything else is refused.
ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": torch.nn.Identity,
    "torch.nn.modules.activation.Tanh": torch.nn.Tanh,
    "torch.nn.modules.activation.ReLU": torch.nn.ReLU,
}


@dataclass(frozen=True)
class ProjectionLayer:
    """One linear layer applied to the encoder's token states: y = act(x @ weight.T + bias)."""

    weight: torch.Tensor  # (out_features, in_features) float32
    bias: torch.Tensor | None  # (out_features,) float32
    activation: str = "torch.nn.modules.linear.Identity"


@dataclass(frozen=True)
class Checkpoint:
    """A resolved checkpoint folder: what `Encoder` needs to build the model.

    Attributes:
        name: The hub id, or the folder's absolute path; recorded in index manifests.
        path: The local folder holding the files.
        format: "stanford", "pylate" or "transformers".
        config: Token layout read from the checkpoint's own files.
        projection: Linear layers after the transformer, in order (empty for "transformers").
    """

    name: str
    path: Path
    format: CheckpointFormat
    config: EncoderConfig
    projection: tuple[ProjectionLayer, ...]


def resolve_model_path(model: str | Path) -> Path:
    """Return a local folder for `model`: an existing folder, or a Hugging Face hub id.

    A hub id is looked up in the local Hugging Face cache and downloaded when the hub is
    reachable. Raises `CheckpointError` when neither works, saying how to pass a folder.
    """
    if not isinstance(model, (str, Path)) or not str(model).strip():
        msg = f"model must be a folder path or a Hugging Face id, got {model!r}"
        raise CheckpointError(msg)
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    if path.exists() or str(model).startswith((".", "/", "~")) or str(model).count("/") > 1:
        msg = f"model folder {str(model)!r} does not exist or is not a folder"
        raise CheckpointError(msg)
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    try:
        return Path(snapshot_download(str(model)))
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        msg = (
            f"could not find model {str(model)!r} in the Hugging Face cache or on the hub ({exc.__class__.__name__}); "
            "when offline, download it elsewhere and pass its local folder instead, "
            "e.g. --model /path/to/colbertv2.0"
        )
        raise CheckpointError(msg) from exc


def load_checkpoint(model: str | Path) -> Checkpoint:
    """Resolve `model`, detect its format and read its settings and projection weights."""
    path = resolve_model_path(model)
    if not (path / "config.json").is_file():
        msg = f"{path} has no config.json; it is not a transformers / ColBERT model folder"
        raise CheckpointError(msg)
    modules = _read_json(path / "modules.json") if (path / "modules.json").is_file() else None
    if modules is not None and _is_pylate(modules):
        fmt: CheckpointFormat = "pylate"
        config, projection = _read_pylate(path, modules)
    elif (path / "artifact.metadata").is_file() or _has_linear(path):
        fmt = "stanford"
        config, projection = _read_stanford(path)
    else:
        fmt = "transformers"
        config, projection = _read_plain(path), ()
        logger.info("%s has no ColBERT projection: using its token states (zero-shot)", path)
    # a local folder is recorded by its absolute path, so the index opens from any directory
    name = str(path) if Path(model).expanduser().is_dir() else str(model)
    return Checkpoint(name=name, path=path, format=fmt, config=config, projection=projection)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise CheckpointError(msg) from exc


def _is_pylate(modules: list[dict[str, Any]]) -> bool:
    kinds = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    return "Dense" in kinds and "Pooling" not in kinds


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    """Tensors of the first weights file in `folder`, never unpickling arbitrary objects."""
    for name in _WEIGHT_FILES:
        file = folder / name
        if not file.is_file():
            continue
        try:
            if name.endswith(".safetensors"):
                return load_file(str(file))
            return torch.load(file, map_location="cpu", weights_only=True)
        except (SafetensorError, pickle.UnpicklingError, OSError, RuntimeError, ValueError) as exc:
            msg = f"cannot load weights from {file} (only safetensors and weights-only torch files are read): {exc}"
            raise CheckpointError(msg) from exc
    msg = f"{folder} holds no weights file ({' or '.join(_WEIGHT_FILES)})"
    raise CheckpointError(msg)


def _has_linear(path: Path) -> bool:
    file = path / "model.safetensors"
    if not file.is_file():
        return False
    from safetensors import safe_open

    with safe_open(str(file), "pt") as f:
        return "linear.weight" in f.keys()  # noqa: SIM118 (safe_open has no __contains__)


def _read_stanford(path: Path) -> tuple[EncoderConfig, tuple[ProjectionLayer, ...]]:
    meta = _read_json(path / "artifact.metadata") if (path / "artifact.metadata").is_file() else {}
    weights = _load_weights(path)
    if "linear.weight" not in weights:
        msg = f"{path} looks like a Stanford ColBERT checkpoint but its weights have no 'linear.weight'"
        raise CheckpointError(msg)
    linear = weights["linear.weight"].float()
    dim = int(meta.get("dim", linear.shape[0]))
    if linear.shape[0] != dim:
        msg = f"{path}: artifact.metadata says dim={dim} but linear.weight has shape {tuple(linear.shape)}"
        raise CheckpointError(msg)
    config = EncoderConfig(
        query_maxlen=int(meta.get("query_maxlen", 32)),
        doc_maxlen=int(meta.get("doc_maxlen", 180)),
        query_marker=str(meta.get("query_token_id", "[unused0]")),
        doc_marker=str(meta.get("doc_token_id", "[unused1]")),
        query_expansion=True,
        attend_to_expansion=bool(meta.get("attend_to_mask_tokens", False)),
        skiplist=_PUNCTUATION if meta.get("mask_punctuation", True) else (),
    )
    return config, (ProjectionLayer(weight=linear, bias=None),)


def _read_pylate(path: Path, modules: list[dict[str, Any]]) -> tuple[EncoderConfig, tuple[ProjectionLayer, ...]]:
    settings_file = path / "config_sentence_transformers.json"
    settings = _read_json(settings_file) if settings_file.is_file() else {}
    layers = []
    for module in modules:
        if str(module.get("type", "")).rsplit(".", 1)[-1] != "Dense":
            continue
        folder = path / str(module.get("path", ""))
        dense = _read_json(folder / "config.json")
        activation = str(dense.get("activation_function", "torch.nn.modules.linear.Identity"))
        if activation not in ACTIVATIONS:
            msg = f"{folder}: unsupported Dense activation {activation!r}"
            raise CheckpointError(msg)
        weights = _load_weights(folder)
        if "linear.weight" not in weights:
            msg = f"{folder}: Dense weights have no 'linear.weight' (keys: {sorted(weights)})"
            raise CheckpointError(msg)
        bias = weights.get("linear.bias")
        if dense.get("bias", bias is not None) and bias is None:
            msg = f"{folder}: config says the Dense layer has a bias but 'linear.bias' is missing"
            raise CheckpointError(msg)
        layers.append(
            ProjectionLayer(
                weight=weights["linear.weight"].float(),
                bias=None if bias is None else bias.float(),
                activation=activation,
            )
        )
    config = EncoderConfig(
        query_maxlen=int(settings.get("query_length", 32)),
        doc_maxlen=int(settings.get("document_length", 180)),
        query_marker=settings.get("query_prefix", "[unused0]") or None,
        doc_marker=settings.get("document_prefix", "[unused1]") or None,
        query_expansion=bool(settings.get("do_query_expansion", True)),
        attend_to_expansion=bool(settings.get("attend_to_expansion_tokens", False)),
        skiplist=tuple(settings.get("skiplist_words", _PUNCTUATION)),
    )
    return config, tuple(layers)


def _read_plain(path: Path) -> EncoderConfig:
    st_config = path / "sentence_bert_config.json"
    model_config = _read_json(path / "config.json")
    maxlen = int(model_config.get("max_position_embeddings", 512))
    if st_config.is_file():
        maxlen = min(maxlen, int(_read_json(st_config).get("max_seq_length", maxlen)))
    return EncoderConfig(
        query_maxlen=min(64, maxlen),
        doc_maxlen=min(256, maxlen),
        query_marker=None,
        doc_marker=None,
        query_expansion=False,
        attend_to_expansion=False,
        skiplist=(),
    )
