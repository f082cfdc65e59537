import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from colbert_retriever import CheckpointError, Encoder
from colbert_retriever.model.transformer import Bert, load_transformer


def _batch() -> tuple[torch.Tensor, torch.Tensor]:
    torch.manual_seed(3)
    ids = torch.randint(7, 60, (3, 11))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    mask[2, 2:] = 0
    return ids, mask


def _reference(folder: Path):
    from transformers import AutoModel

    return AutoModel.from_pretrained(str(folder)).eval()


def _same_outputs(ours, reference) -> None:
    ids, mask = _batch()
    with torch.inference_mode():
        mine, theirs = ours(input_ids=ids, attention_mask=mask)[0], reference(input_ids=ids, attention_mask=mask)[0]
    assert torch.equal(mine, theirs)


@pytest.mark.parametrize("name", ["plain", "stanford"])
def test_plain_bert_runs_here_bit_for_bit_as_transformers(checkpoints, name: str) -> None:
    ours = load_transformer(checkpoints[name])
    assert isinstance(ours, Bert)
    reference = _reference(checkpoints["plain"])  # stanford holds the same BERT under "bert."
    _same_outputs(ours, reference)
    theirs = {k: v for k, v in reference.state_dict().items() if not k.startswith("pooler.")}
    assert sorted(ours.state_dict()) == sorted(theirs)  # the names an index's fingerprint covers


def test_an_index_built_with_transformers_bert_keeps_its_fingerprint(checkpoints) -> None:
    ours = Encoder.from_pretrained(checkpoints["stanford"])
    with_transformers = Encoder(ours.checkpoint, _reference(checkpoints["plain"]), ours._tokenizer, ours.config)
    assert ours.fingerprint == with_transformers.fingerprint


def test_tanh_gelu_bert_matches_too(checkpoints, tmp_path: Path) -> None:
    folder = tmp_path / "tanh"
    folder.mkdir()
    config = json.loads((checkpoints["plain"] / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "hidden_act": "gelu_new"}))
    (folder / "model.safetensors").write_bytes((checkpoints["plain"] / "model.safetensors").read_bytes())
    ours = load_transformer(folder)
    assert isinstance(ours, Bert)
    _same_outputs(ours, _reference(folder))


def test_what_is_not_plain_bert_loads_through_transformers(checkpoints, tmp_path: Path) -> None:
    from transformers import BertConfig, BertModel, DistilBertConfig, DistilBertModel

    torch.manual_seed(0)
    distil = DistilBertModel(DistilBertConfig(vocab_size=64, dim=16, n_layers=1, n_heads=2, hidden_dim=24)).eval()
    distil.save_pretrained(tmp_path / "distil")
    relative = tmp_path / "relative"
    config = json.loads((checkpoints["plain"] / "config.json").read_text())
    BertModel(BertConfig(**{**config, "position_embedding_type": "relative_key"})).save_pretrained(relative)

    loaded = load_transformer(tmp_path / "distil")
    assert not isinstance(loaded, Bert)
    _same_outputs(loaded, distil)
    assert not isinstance(load_transformer(relative), Bert)
    assert not isinstance(load_transformer(checkpoints["plain"], trust_remote_code=True), Bert)


def test_weights_missing_or_of_another_shape_are_errors(checkpoints, tmp_path: Path) -> None:
    weights = load_file(checkpoints["plain"] / "model.safetensors")
    config = (checkpoints["plain"] / "config.json").read_text()
    missing, reshaped = tmp_path / "missing", tmp_path / "reshaped"
    for folder in (missing, reshaped):
        folder.mkdir()
        (folder / "config.json").write_text(config)
    save_file({k: v for k, v in weights.items() if "layer.1.output" not in k}, str(missing / "model.safetensors"))
    wrong = {k: (v[:-1] if k.endswith("word_embeddings.weight") else v) for k, v in weights.items()}
    save_file(wrong, str(reshaped / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"missing for \['encoder\.layer\.1\.output"):
        load_transformer(missing)
    with pytest.raises(CheckpointError, match="word_embeddings"):
        load_transformer(reshaped)
    (reshaped / "config.json").write_text(json.dumps({**json.loads(config), "num_attention_heads": 3}))
    with pytest.raises(CheckpointError, match="cannot load the transformer"):  # 32 hidden units over 3 heads
        load_transformer(reshaped)


def test_encoding_with_a_bert_checkpoint_never_imports_transformers(checkpoints) -> None:
    """What made `colbert-retriever search` start late: transformers' modeling modules (~5 s),
    then importing transformers at all for its tokenizer (~1.5 s)."""
    code = (
        "import sys\n"
        "from colbert_retriever import Encoder\n"
        f"Encoder.from_pretrained({str(checkpoints['stanford'])!r}).encode_queries(['red car'])\n"
        "heavy = ('transformers', 'torch._dynamo')\n"
        "print([m for m in heavy if m in sys.modules])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
