"""The transformer under a checkpoint.

Plain BERT (most ColBERT checkpoints: colbertv2.0, MiniLM, answerai-colbert-small) runs
in the small torch module below: transformers' `BertModel` computes the same thing
(bit for bit, tests/test_transformer.py), but importing it pulls in ~5 s of other modules
(generation, torch._dynamo, distributed tensors) on a 2-core machine, which every
`colbert-retriever search` paid before its first query. Every other architecture, remote
code, and whatever `BertShape.read` does not recognise loads through transformers'
`AutoModel`. The parameter names are transformers' own, so state dicts, and the
fingerprint an index records, are the same either way.
"""

from __future__ import annotations

import json
import pickle  # only for its error type: torch reads weights with weights_only=True
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from colbert_retriever.errors import CheckpointError
from colbert_retriever.model.checkpoint import load_weights, weights_file

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "gelu": nn.GELU,
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
}


@dataclass(frozen=True)
class BertShape:
    """The `config.json` fields a BERT forward pass needs."""

    vocab_size: int
    hidden_size: int
    num_hidden_layers: int
    num_attention_heads: int
    intermediate_size: int
    max_position_embeddings: int
    type_vocab_size: int
    layer_norm_eps: float
    hidden_act: str

    @classmethod
    def read(cls, folder: Path) -> BertShape | None:
        """The shape of the plain BERT in `folder`, or None where it holds anything else
        (another architecture, relative positions, a decoder, remote code, sharded weights)."""
        try:
            config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        plain = (
            isinstance(config, dict)
            and config.get("model_type") == "bert"
            and config.get("position_embedding_type", "absolute") == "absolute"
            and not config.get("is_decoder", False)
            and "auto_map" not in config
            and config.get("hidden_act", "gelu") in ACTIVATIONS
            and weights_file(folder) is not None
        )
        if not plain:
            return None
        try:
            shape = cls(
                vocab_size=int(config["vocab_size"]),
                hidden_size=int(config["hidden_size"]),
                num_hidden_layers=int(config["num_hidden_layers"]),
                num_attention_heads=int(config["num_attention_heads"]),
                intermediate_size=int(config["intermediate_size"]),
                max_position_embeddings=int(config.get("max_position_embeddings", 512)),
                type_vocab_size=int(config.get("type_vocab_size", 2)),
                layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
                hidden_act=str(config.get("hidden_act", "gelu")),
            )
        except (KeyError, TypeError, ValueError):
            return None
        sizes = [getattr(shape, name) for name in ("vocab_size", "hidden_size", "num_attention_heads")]
        if min(sizes) < 1 or shape.hidden_size % shape.num_attention_heads:
            return None  # transformers says what is wrong with it
        return shape


class Bert(nn.Module):
    """A BERT encoder without pooler: `(input_ids, attention_mask)` -> last hidden states.
    Attribute names are transformers' (`encoder.layer.0.attention.self.query`...)."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.config = shape  # as transformers' models: `.config.hidden_size`
        self.embeddings = _Embeddings(shape)
        self.encoder = _Encoder(shape)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        """(batch, length) ids and 0/1 mask -> ((batch, length, hidden) states,): a 1-tuple
        as transformers' models return, so that callers take `[0]` from either."""
        states = self.embeddings(input_ids)
        attend = attention_mask.bool()[:, None, None, :]  # (batch, head, query, key)
        for layer in self.encoder.layer:
            states = layer(states, attend)
        return (states,)


class _Embeddings(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        hidden = shape.hidden_size
        self.word_embeddings = nn.Embedding(shape.vocab_size, hidden)
        self.position_embeddings = nn.Embedding(shape.max_position_embeddings, hidden)
        self.token_type_embeddings = nn.Embedding(shape.type_vocab_size, hidden)
        self.LayerNorm = nn.LayerNorm(hidden, eps=shape.layer_norm_eps)

    def forward(self, input_ids: torch.Tensor) -> torch.Tensor:
        # transformers' order of additions (word + type, then + position): the same bits
        states = self.word_embeddings(input_ids) + self.token_type_embeddings.weight[0]
        return self.LayerNorm(states + self.position_embeddings.weight[: input_ids.shape[1]])


class _Encoder(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.layer = nn.ModuleList(_Layer(shape) for _ in range(shape.num_hidden_layers))


class _Layer(nn.Module):
    """Self-attention, then the feed-forward block, each added to its input and normalised."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.attention = _Attention(shape)
        self.intermediate = _Intermediate(shape)
        self.output = _AddNorm(shape.intermediate_size, shape)

    def forward(self, states: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        states = self.attention(states, attend)
        return self.output(self.intermediate(states), states)


class _Attention(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.self = _SelfAttention(shape)
        self.output = _AddNorm(shape.hidden_size, shape)

    def forward(self, states: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        return self.output(self.self(states, attend), states)


class _SelfAttention(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        hidden = shape.hidden_size
        self.heads = shape.num_attention_heads
        self.query, self.key, self.value = (nn.Linear(hidden, hidden) for _ in range(3))

    def forward(self, states: torch.Tensor, attend: torch.Tensor) -> torch.Tensor:
        q, k, v = (
            proj(states).unflatten(-1, (self.heads, -1)).transpose(1, 2) for proj in (self.query, self.key, self.value)
        )
        context = nn.functional.scaled_dot_product_attention(q, k, v, attn_mask=attend)
        return context.transpose(1, 2).flatten(2)


class _Intermediate(nn.Module):
    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(shape.hidden_size, shape.intermediate_size)
        self.activation = ACTIVATIONS[shape.hidden_act]()

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        return self.activation(self.dense(states))


class _AddNorm(nn.Module):
    """A dense layer, then LayerNorm of its output plus the states it refines."""

    def __init__(self, width: int, shape: BertShape) -> None:
        super().__init__()
        self.dense = nn.Linear(width, shape.hidden_size)
        self.LayerNorm = nn.LayerNorm(shape.hidden_size, eps=shape.layer_norm_eps)

    def forward(self, update: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
        return self.LayerNorm(self.dense(update) + states)


def bert_weights(weights: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """`weights` under the names `Bert` uses, read as transformers reads them: without the
    `bert.` prefix of a full model (colbert-ai's HF_ColBERT, BertForMaskedLM) and with
    LayerNorm's old names (`gamma`, `beta`: TensorFlow ports, and transformers 5 writes them
    back when it saved a model it loaded under them) as `weight` and `bias`."""
    if any(name.startswith("bert.") for name in weights):
        weights = {name.removeprefix("bert."): tensor for name, tensor in weights.items() if name.startswith("bert.")}
    renamed = {}
    for name, tensor in weights.items():
        if ".LayerNorm." in name or name.startswith("LayerNorm."):
            name = name.removesuffix(".gamma") + ".weight" if name.endswith(".gamma") else name
            name = name.removesuffix(".beta") + ".bias" if name.endswith(".beta") else name
        renamed[name] = tensor
    return renamed


def load_transformer(folder: Path, *, trust_remote_code: bool = False) -> Any:
    """The encoder in `folder` with its weights: `Bert` for plain BERT, transformers'
    `AutoModel` otherwise (and for a BERT whose weights `Bert` does not find under the names
    it knows); every weight but the pooler's must be in the files."""
    plain = None if trust_remote_code else _load_bert(folder)
    if plain is not None and not _counted(plain[1]):
        return plain[0].float().eval()
    from transformers import AutoModel

    try:
        with quiet_transformers():
            model, info = AutoModel.from_pretrained(
                str(folder), output_loading_info=True, trust_remote_code=trust_remote_code
            )
    except (OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
        msg = f"cannot load the transformer in {folder}: {str(exc).splitlines()[0]}"
        raise CheckpointError(msg) from exc
    missing = _counted(info["missing_keys"])
    if missing:
        msg = f"{folder}: weights are missing for {missing[:5]}{'...' if len(missing) > 5 else ''}"
        if not trust_remote_code and "auto_map" in _config(folder):
            msg += "; the checkpoint ships its own model code (auto_map): pass trust_remote_code=True if you trust it"
        raise CheckpointError(msg)
    return model.float().eval()


def _counted(missing: list[str]) -> list[str]:
    """Missing weights that matter: all but the pooler's (unused by ColBERT)."""
    return sorted(name for name in missing if not name.startswith("pooler."))


def _config(folder: Path) -> dict[str, Any]:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return config if isinstance(config, dict) else {}


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Silence transformers' load report and bars: we check missing weights ourselves."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def _load_bert(folder: Path) -> tuple[Bert, list[str]] | None:
    """The plain BERT in `folder` and the names of weights missing from its file; None where
    `BertShape.read` does not recognise it (transformers then reads the folder)."""
    shape = BertShape.read(folder)
    file = weights_file(folder)
    if shape is None or file is None:
        return None
    weights = bert_weights(load_weights(file))
    model = Bert(shape)
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and tensor.shape != expected[name].shape:
            implied = tuple(expected[name].shape)
            msg = f"{folder}: weight {name} has shape {tuple(tensor.shape)}, config.json implies {implied}"
            raise CheckpointError(msg)
    result = model.load_state_dict(weights, strict=False)
    return model, list(result.missing_keys)
