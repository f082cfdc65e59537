"""The transformer under a checkpoint, and its tokenizer.

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
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file
from torch import nn

from colbert_retriever.errors import CheckpointError

ACTIVATIONS = {
    "gelu": nn.GELU,
    "gelu_new": lambda: nn.GELU(approximate="tanh"),
    "gelu_pytorch_tanh": lambda: nn.GELU(approximate="tanh"),
    "relu": nn.ReLU,
}
WEIGHTS = "model.safetensors"


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
            and (folder / WEIGHTS).is_file()
        )
        if not plain:
            return None
        try:
            return cls(
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


class Bert(nn.Module):
    """A BERT encoder without pooler: `(input_ids, attention_mask)` -> last hidden states."""

    def __init__(self, shape: BertShape) -> None:
        super().__init__()
        self.config = shape  # as transformers' models: `.config.hidden_size`
        hidden, eps = shape.hidden_size, shape.layer_norm_eps

        def block(width: int) -> nn.ModuleDict:
            return nn.ModuleDict({"dense": nn.Linear(width, hidden), "LayerNorm": nn.LayerNorm(hidden, eps=eps)})

        self.embeddings = nn.ModuleDict(
            {
                "word_embeddings": nn.Embedding(shape.vocab_size, hidden),
                "position_embeddings": nn.Embedding(shape.max_position_embeddings, hidden),
                "token_type_embeddings": nn.Embedding(shape.type_vocab_size, hidden),
                "LayerNorm": nn.LayerNorm(hidden, eps=eps),
            }
        )

        def attention() -> nn.ModuleDict:
            return nn.ModuleDict({name: nn.Linear(hidden, hidden) for name in ("query", "key", "value")})

        self.encoder = nn.ModuleDict(
            {
                "layer": nn.ModuleList(
                    nn.ModuleDict(
                        {
                            "attention": nn.ModuleDict({"self": attention(), "output": block(hidden)}),
                            "intermediate": nn.ModuleDict({"dense": nn.Linear(hidden, shape.intermediate_size)}),
                            "output": block(shape.intermediate_size),
                        }
                    )
                    for _ in range(shape.num_hidden_layers)
                )
            }
        )
        self.activation = ACTIVATIONS[shape.hidden_act]()

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> tuple[torch.Tensor]:
        """(batch, length) ids and 0/1 mask -> ((batch, length, hidden) states,): a 1-tuple
        as transformers' models return, so that callers take `[0]` from either."""
        emb = self.embeddings
        length = input_ids.shape[1]
        states = emb["word_embeddings"](input_ids) + emb["token_type_embeddings"].weight[0]
        states = emb["LayerNorm"](states + emb["position_embeddings"].weight[:length])
        attend = attention_mask.bool()[:, None, None, :]  # (batch, head, query, key)
        heads = self.config.num_attention_heads
        for layer in self.encoder["layer"]:
            qkv = layer["attention"]["self"]
            split = [qkv[name](states).unflatten(-1, (heads, -1)).transpose(1, 2) for name in ("query", "key", "value")]
            context = nn.functional.scaled_dot_product_attention(*split, attn_mask=attend)
            states = _add_norm(layer["attention"]["output"], context.transpose(1, 2).flatten(2), states)
            inner = self.activation(layer["intermediate"]["dense"](states))
            states = _add_norm(layer["output"], inner, states)
        return (states,)


def _add_norm(block: Any, update: torch.Tensor, states: torch.Tensor) -> torch.Tensor:
    return block["LayerNorm"](block["dense"](update) + states)


def load_transformer(folder: Path, *, trust_remote_code: bool = False) -> Any:
    """The encoder in `folder` with its weights: `Bert` for plain BERT, transformers'
    `AutoModel` otherwise; every weight but the pooler's must be in the files."""
    plain = None if trust_remote_code else _load_bert(folder)
    if plain is not None:
        model, missing = plain
    else:
        from transformers import AutoModel

        try:
            with quiet_transformers():
                model, info = AutoModel.from_pretrained(
                    str(folder), output_loading_info=True, trust_remote_code=trust_remote_code
                )
        except (OSError, ValueError, KeyError, pickle.UnpicklingError) as exc:
            msg = f"cannot load the transformer in {folder}: {str(exc).splitlines()[0]}"
            raise CheckpointError(msg) from exc
        missing = info["missing_keys"]
    missing = sorted(name for name in missing if not name.startswith("pooler."))
    if missing:
        msg = f"{folder}: weights are missing for {missing[:5]}{'...' if len(missing) > 5 else ''}"
        raise CheckpointError(msg)
    return model.float().eval()


def load_tokenizer(folder: Path, *, trust_remote_code: bool = False) -> Any:
    """transformers' tokenizer of the checkpoint in `folder`."""
    from transformers import AutoTokenizer

    try:
        with quiet_transformers():
            return AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
    except (OSError, ValueError, KeyError) as exc:
        msg = f"cannot load the tokenizer in {folder}: {str(exc).splitlines()[0]}"
        raise CheckpointError(msg) from exc


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
    if shape is None:
        return None
    try:
        weights = load_file(folder / WEIGHTS)
    except (OSError, SafetensorError) as exc:
        msg = f"cannot read {folder / WEIGHTS}: {exc}"
        raise CheckpointError(msg) from exc
    if any(name.startswith("bert.") for name in weights):  # colbert-ai's HF_ColBERT nests the encoder
        weights = {name.removeprefix("bert."): tensor for name, tensor in weights.items() if name.startswith("bert.")}
    model = Bert(shape)
    expected = model.state_dict()
    for name, tensor in weights.items():
        if name in expected and tensor.shape != expected[name].shape:
            implied = tuple(expected[name].shape)
            msg = f"{folder}: weight {name} has shape {tuple(tensor.shape)}, config.json implies {implied}"
            raise CheckpointError(msg)
    result = model.load_state_dict(weights, strict=False)
    return model, list(result.missing_keys)
