"""Reading ColBERT checkpoint folders: where the files are, which format, which settings.

Three formats are recognised, from the files alone (never from the model's name):

* ``stanford``: colbert-ai / Stanford ColBERT (e.g. colbert-ir/colbertv2.0). config.json names
  the ``HF_ColBERT`` architecture, or the weights carry ``linear.weight`` (dim x hidden, no
  bias) beside ``bert.*``; settings in ``artifact.metadata`` when present, colbert-ai's
  defaults otherwise.
* ``pylate``: PyLate / sentence-transformers ColBERT (e.g. answerdotai/answerai-colbert-small-v1).
  ``modules.json`` lists a Transformer then Dense module(s) and no Pooling; settings in
  ``config_sentence_transformers.json`` (lengths, markers, prompts, skiplist) and the
  Transformer's ``sentence_bert_config.json`` (lowercasing).
* ``transformers``: any other encoder folder (e.g. all-MiniLM-L6-v2): its token states,
  L2-normalised, with no projection and no markers, for zero-shot late interaction.

A folder that claims to be a ColBERT checkpoint loads every part it declares or is refused
with a `CheckpointError` naming the part. This module reads files only; `encoder.py` builds
the torch modules from what it returns.
"""

from __future__ import annotations

import importlib
import itertools
import json
import logging
import pickle  # only for its error type: weights are read with weights_only=True
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file

from colbert_retriever.config import EncoderConfig
from colbert_retriever.errors import CheckpointError

logger = logging.getLogger(__name__)

CheckpointFormat = Literal["stanford", "pylate", "transformers"]

WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_PUNCTUATION = tuple(string.punctuation)
_IDENTITY = "torch.nn.modules.linear.Identity"
# colbert-ai 0.2.22's ColBERTConfig defaults, used where artifact.metadata is absent
_STANFORD_DEFAULTS = {"query_maxlen": 32, "doc_maxlen": 220}
# prompt names PyLate checkpoints give documents (ColBERT-Zero: "document")
_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


@dataclass(frozen=True)
class ProjectionLayer:
    """One Dense layer after the encoder, as PyLate builds it:
    y = act(x @ weight.T + bias), plus x (or x @ residual.T) when `use_residual`."""

    weight: torch.Tensor  # (out_features, in_features) float32
    bias: torch.Tensor | None  # (out_features,) float32
    activation: str = _IDENTITY  # a torch.nn module by its import name
    use_residual: bool = False
    residual: torch.Tensor | None = None  # (out_features, in_features) where they differ


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


def activation_module(name: str) -> torch.nn.Module:
    """The `torch.nn` activation named by its import path, as PyLate's Dense saves it
    (e.g. "torch.nn.modules.activation.GELU"); nothing outside `torch.nn` is imported."""
    module_name, _, attribute = name.rpartition(".")
    if not module_name.startswith("torch.nn") or not attribute:
        msg = f"Dense activation {name!r} is not a torch.nn module; only torch.nn activations are loaded"
        raise CheckpointError(msg)
    try:
        cls = getattr(importlib.import_module(module_name), attribute)
        if not (isinstance(cls, type) and issubclass(cls, torch.nn.Module)):
            raise TypeError(name)
        return cls()
    except (ImportError, AttributeError, TypeError) as exc:
        msg = f"unknown Dense activation {name!r} (not a torch.nn module this torch has)"
        raise CheckpointError(msg) from exc


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
    model_config = _read_json(path / "config.json")
    modules = _read_json(path / "modules.json") if (path / "modules.json").is_file() else None
    settings_file = path / "config_sentence_transformers.json"
    settings = _read_json(settings_file) if settings_file.is_file() else {}
    if modules is not None and (_is_pylate(modules) or settings.get("model_type") == "ColBERT"):
        fmt: CheckpointFormat = "pylate"
        config, projection = _read_pylate(path, modules, settings)
    elif _is_stanford(path, model_config):
        fmt = "stanford"
        config, projection = _read_stanford(path)
    else:
        fmt = "transformers"
        config, projection = _read_plain(path, model_config), ()
        _report_zero_shot(str(path))
    # a local folder is recorded by its absolute path, so the index opens from any directory
    name = str(path) if Path(model).expanduser().is_dir() else str(model)
    return Checkpoint(name=name, path=path, format=fmt, config=config, projection=projection)


def _report_zero_shot(path: str) -> None:
    logger.info(
        "%s is a plain encoder, not a ColBERT checkpoint: using its token states without a "
        "projection (zero-shot late interaction)",
        path,
    )


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        msg = f"cannot read {path}: {exc}"
        raise CheckpointError(msg) from exc


def _kind(module: dict[str, Any]) -> str:
    return str(module.get("type", "")).rsplit(".", 1)[-1]


def _is_pylate(modules: list[dict[str, Any]]) -> bool:
    kinds = [_kind(m) for m in modules]
    return "Dense" in kinds and "Pooling" not in kinds


def load_weights(file: Path) -> dict[str, torch.Tensor]:
    """Tensors of a safetensors or torch weights file, never unpickling arbitrary objects."""
    try:
        if file.suffix == ".safetensors":
            return load_file(str(file))
        weights = torch.load(file, map_location="cpu", weights_only=True)
    except (SafetensorError, pickle.UnpicklingError, OSError, RuntimeError, ValueError, EOFError) as exc:
        msg = f"cannot load weights from {file} (only safetensors and weights-only torch files are read): {exc}"
        raise CheckpointError(msg) from exc
    if not isinstance(weights, dict) or not all(isinstance(t, torch.Tensor) for t in weights.values()):
        msg = f"{file} does not hold a dictionary of tensors"
        raise CheckpointError(msg)
    return weights


def weights_file(folder: Path) -> Path | None:
    """The first weights file in `folder` (safetensors before torch's format), if any."""
    return next((folder / name for name in WEIGHT_FILES if (folder / name).is_file()), None)


def _load_weights(folder: Path) -> dict[str, torch.Tensor]:
    file = weights_file(folder)
    if file is None:
        msg = f"{folder} holds no weights file ({' or '.join(WEIGHT_FILES)})"
        raise CheckpointError(msg)
    return load_weights(file)


def _is_stanford(path: Path, model_config: Any) -> bool:
    """colbert-ai's layout: the HF_ColBERT architecture, artifact.metadata, or a
    `linear.weight` beside the encoder's weights."""
    architectures = model_config.get("architectures") if isinstance(model_config, dict) else None
    if isinstance(architectures, list) and "HF_ColBERT" in architectures:
        return True
    if (path / "artifact.metadata").is_file():
        return True
    file = weights_file(path)
    if file is None:
        return False
    if file.suffix == ".safetensors":
        try:
            with safe_open(str(file), "pt") as f:
                return "linear.weight" in f.keys()  # noqa: SIM118 (safe_open has no __contains__)
        except (SafetensorError, OSError):
            return False  # the transformer's loader reports the unreadable file
    return "linear.weight" in load_weights(file)


def _read_stanford(path: Path) -> tuple[EncoderConfig, tuple[ProjectionLayer, ...]]:
    meta = _read_json(path / "artifact.metadata") if (path / "artifact.metadata").is_file() else {}
    if not meta:
        logger.info("%s has no artifact.metadata: using colbert-ai's default settings", path)
    weights = _load_weights(path)
    if "linear.weight" not in weights:
        msg = f"{path} is a Stanford ColBERT checkpoint (HF_ColBERT) but its weights have no 'linear.weight' projection"
        raise CheckpointError(msg)
    linear = weights["linear.weight"].float()
    dim = int(meta.get("dim", linear.shape[0]))  # without metadata, the weight says it (as in PyLate)
    if linear.shape[0] != dim:
        msg = f"{path}: artifact.metadata says dim={dim} but linear.weight has shape {tuple(linear.shape)}"
        raise CheckpointError(msg)
    config = EncoderConfig(
        query_maxlen=int(meta.get("query_maxlen", _STANFORD_DEFAULTS["query_maxlen"])),
        doc_maxlen=int(meta.get("doc_maxlen", _STANFORD_DEFAULTS["doc_maxlen"])),
        query_marker=str(meta.get("query_token_id", "[unused0]")),
        doc_marker=str(meta.get("doc_token_id", "[unused1]")),
        query_expansion=True,
        attend_to_expansion=bool(meta.get("attend_to_mask_tokens", False)),
        skiplist=_PUNCTUATION if meta.get("mask_punctuation", True) else (),
    )
    return config, (ProjectionLayer(weight=linear, bias=None),)


def _read_pylate(
    path: Path, modules: list[dict[str, Any]], settings: dict[str, Any]
) -> tuple[EncoderConfig, tuple[ProjectionLayer, ...]]:
    """PyLate's model: a Transformer module, then Dense layers, with the settings PyLate
    1.6.0 applies when it loads the folder (its defaults where the files are silent)."""
    if not modules or _kind(modules[0]) != "Transformer":
        msg = f"{path}/modules.json: a ColBERT checkpoint starts with a Transformer module, got {modules[:1]}"
        raise CheckpointError(msg)
    layers = []
    for module in modules[1:]:
        if _kind(module) != "Dense":
            msg = f"{path}/modules.json: module {module.get('type')!r} is not supported (only Transformer then Dense)"
            raise CheckpointError(msg)
        layers.append(_read_dense(_inside(path, module.get("path", ""))))
    if not layers:
        msg = f"{path} declares a ColBERT model but modules.json lists no Dense projection"
        raise CheckpointError(msg)
    for before, after in itertools.pairwise(layers):
        if before.weight.shape[0] != after.weight.shape[1]:
            msg = f"{path}: Dense layers do not chain ({tuple(before.weight.shape)} then {tuple(after.weight.shape)})"
            raise CheckpointError(msg)
    transformer = _read_transformer_settings(_inside(path, modules[0].get("path", "")))
    prompts = settings.get("prompts") or {}
    if not isinstance(prompts, dict) or not all(isinstance(v, str) for v in prompts.values()):
        msg = f"{path}/config_sentence_transformers.json: prompts must map names to strings, got {prompts!r}"
        raise CheckpointError(msg)
    default = prompts.get(settings.get("default_prompt_name") or "", "")
    doc_prompt = next((prompts[name] for name in _DOCUMENT_PROMPTS if name in prompts), default)
    truncate_dim = settings.get("truncate_dim")
    config = EncoderConfig(
        query_maxlen=int(settings.get("query_length") or 32),
        doc_maxlen=int(settings.get("document_length") or 180),
        query_marker=_prefix(settings.get("query_prefix"), "[Q] "),
        doc_marker=_prefix(settings.get("document_prefix"), "[D] "),
        query_expansion=bool(settings.get("do_query_expansion", True)),
        attend_to_expansion=bool(settings.get("do_query_expansion", True))
        and bool(settings.get("attend_to_expansion_tokens", False)),
        skiplist=tuple(settings.get("skiplist_words", _PUNCTUATION)),
        query_prompt=str(prompts.get("query", default)),
        doc_prompt=doc_prompt,
        lowercase=bool(transformer.get("do_lower_case", False)),
        strip=True,
        truncate_dim=None if truncate_dim is None else int(truncate_dim),
    )
    return config, tuple(layers)


def _prefix(value: Any, default: str) -> str | None:
    """A PyLate marker: its default where unset, none where set to ""."""
    if value is None:
        return default
    return str(value) or None


def _inside(root: Path, relative: Any) -> Path:
    """`root / relative`, refused when the name read from a file leads outside `root`."""
    folder = (root / str(relative)).resolve()
    if not folder.is_relative_to(root.resolve()):
        msg = f"{root}/modules.json names a module path outside the checkpoint: {relative!r}"
        raise CheckpointError(msg)
    return folder


def _read_transformer_settings(folder: Path) -> dict[str, Any]:
    """The Transformer module's sentence_bert_config.json. Its `max_seq_length` is replaced
    by the query and document lengths, as PyLate does; `do_lower_case` applies."""
    file = folder / "sentence_bert_config.json"
    settings = _read_json(file) if file.is_file() else {}
    if not isinstance(settings, dict) or not isinstance(settings.get("do_lower_case", False), bool):
        msg = f"{file}: do_lower_case must be true or false"
        raise CheckpointError(msg)
    return settings


def _read_dense(folder: Path) -> ProjectionLayer:
    """One Dense module folder: config.json and its weights, every declared part checked."""
    dense = _read_json(folder / "config.json")
    known = {"in_features", "out_features", "bias", "activation_function", "use_residual"}
    unknown = sorted(set(dense) - known)
    if unknown:
        msg = f"{folder}/config.json: Dense settings {unknown} are not supported"
        raise CheckpointError(msg)
    activation = str(dense.get("activation_function", _IDENTITY))
    try:
        activation_module(activation)
    except CheckpointError as exc:
        msg = f"{folder}: {exc}"
        raise CheckpointError(msg) from exc
    weights = _load_weights(folder)
    weight = weights.get("linear.weight")
    if weight is None:
        msg = f"{folder}: Dense weights have no 'linear.weight' (keys: {sorted(weights)})"
        raise CheckpointError(msg)
    shape = (int(dense.get("out_features", weight.shape[0])), int(dense.get("in_features", weight.shape[1])))
    if tuple(weight.shape) != shape:
        msg = f"{folder}: linear.weight has shape {tuple(weight.shape)}, config.json says {shape}"
        raise CheckpointError(msg)
    bias = weights.get("linear.bias")
    if dense.get("bias", True) and bias is None:
        msg = f"{folder}: config says the Dense layer has a bias but 'linear.bias' is missing"
        raise CheckpointError(msg)
    use_residual = bool(dense.get("use_residual", False))
    residual = weights.get("residual.weight")
    if use_residual and shape[0] != shape[1] and residual is None:
        msg = f"{folder}: use_residual with {shape[1]} -> {shape[0]} features needs 'residual.weight', which is missing"
        raise CheckpointError(msg)
    expected = {"linear.weight", "linear.bias", "residual.weight"}
    extra = sorted(set(weights) - expected)
    if extra:
        msg = f"{folder}: Dense weights {extra} are not part of a Dense layer"
        raise CheckpointError(msg)
    return ProjectionLayer(
        weight=weight.float(),
        bias=bias.float() if bias is not None and dense.get("bias", True) else None,
        activation=activation,
        use_residual=use_residual,
        residual=residual.float() if use_residual and residual is not None else None,
    )


def _read_plain(path: Path, model_config: Any) -> EncoderConfig:
    st_config = path / "sentence_bert_config.json"
    maxlen = int(model_config.get("max_position_embeddings", 512))
    lowercase = False
    if st_config.is_file():
        st_settings = _read_json(st_config)
        maxlen = min(maxlen, int(st_settings.get("max_seq_length") or maxlen))
        lowercase = bool(st_settings.get("do_lower_case", False))
    return EncoderConfig(
        query_maxlen=min(64, maxlen),
        doc_maxlen=min(256, maxlen),
        query_marker=None,
        doc_marker=None,
        query_expansion=False,
        attend_to_expansion=False,
        skiplist=(),
        lowercase=lowercase,
    )
