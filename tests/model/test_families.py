"""Checkpoint families against their references: tiny random checkpoints saved by PyLate
1.6.0 (transformers 5.3) and colbert-ai 0.2.22 themselves, with the vectors those libraries
output (tests/fixtures/families, recorded by its make.py)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from colbert_retriever import CheckpointError, Encoder
from colbert_retriever.model.checkpoint import load_checkpoint
from colbert_retriever.model.transformer import load_transformer

FAMILIES = Path(__file__).resolve().parents[1] / "fixtures" / "families"
TEXTS = json.loads((FAMILIES / "texts.json").read_text(encoding="utf-8"))
NAMES = sorted(p.name for p in FAMILIES.iterdir() if (p / "expected.npz").is_file())


class _Encoders(dict):
    """Each family's encoder, built on first use; a family whose architecture the installed
    transformers does not know (LFM2 before 4.54) is skipped, saying so."""

    def __missing__(self, name: str) -> Encoder:
        from transformers import CONFIG_MAPPING

        model_type = json.loads((FAMILIES / name / "config.json").read_text())["model_type"]
        if model_type not in CONFIG_MAPPING:
            pytest.skip(f"transformers {transformers_version()} has no {model_type} architecture")
        self[name] = Encoder.from_pretrained(FAMILIES / name, precision="float32", show_progress=False)
        return self[name]


def transformers_version() -> str:
    import transformers

    return transformers.__version__


@pytest.fixture(scope="module")
def encoders() -> dict[str, Encoder]:
    return _Encoders()


def test_every_family_is_recorded() -> None:
    assert NAMES == ["bert", "distilbert", "electra", "lfm2", "modernbert", "roberta", "stanford-bin", "xlmr"]


@pytest.mark.parametrize("name", NAMES)
def test_queries_match_the_reference(encoders: dict[str, Encoder], name: str) -> None:
    expected = np.load(FAMILIES / name / "expected.npz", allow_pickle=False)
    encoder = encoders[name]
    batch = encoder.tokenize(TEXTS["queries"], is_query=True)
    np.testing.assert_array_equal(batch.input_ids.numpy(), expected["query_input_ids"])
    np.testing.assert_array_equal(batch.attention_mask.numpy(), expected["query_attention_mask"])
    vectors = encoder.encode_queries(TEXTS["queries"])
    # transformers 4.x's ModernBERT computes the unattended expansion positions differently
    # (by up to 1e-3) from 5.x, which the reference ran on; attended positions agree on both
    every_position = name != "modernbert" or int(transformers_version().split(".")[0]) >= 5
    for got, want, mask in zip(vectors, expected["query_embeddings"], expected["query_attention_mask"], strict=True):
        rows = slice(None) if every_position else mask.astype(bool)
        np.testing.assert_allclose(got[rows], want[rows], atol=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_documents_match_the_reference(encoders: dict[str, Encoder], name: str) -> None:
    expected = np.load(FAMILIES / name / "expected.npz", allow_pickle=False)
    encoder = encoders[name]
    offsets = expected["document_offsets"]
    batch = encoder.tokenize(TEXTS["documents"], is_query=False)
    for row, text in enumerate(TEXTS["documents"]):
        want = slice(offsets[row], offsets[row + 1])
        kept = batch.input_ids[row][batch.keep[row]].numpy()
        np.testing.assert_array_equal(kept, expected["document_token_ids"][want])
        alone = encoder.encode_documents([text])[0]  # one at a time: no padding in play
        np.testing.assert_allclose(alone, expected["document_embeddings"][want], atol=1e-5)
    together = np.concatenate(encoder.encode_documents(TEXTS["documents"]))
    np.testing.assert_allclose(together, expected["document_embeddings"], atol=1e-5)


def test_each_declared_setting_is_what_the_reference_applied(encoders: dict[str, Encoder]) -> None:
    """The settings that decide these fixtures' vectors; each, turned off, changes them."""
    layouts = {name: encoders[name].config for name in NAMES if name != "lfm2"}
    assert layouts["modernbert"].lowercase
    assert layouts["modernbert"].strip
    assert (layouts["xlmr"].query_prompt, layouts["xlmr"].doc_prompt) == ("search_query: ", "search_document: ")
    assert layouts["electra"].attend_to_expansion
    assert (layouts["stanford-bin"].doc_maxlen, encoders["stanford-bin"].dim) == (220, 128)
    changed = {
        "modernbert": {"lowercase": False},
        "xlmr": {"doc_prompt": ""},
        "roberta": {"strip": False},
    }
    for name, override in changed.items():
        expected = np.load(FAMILIES / name / "expected.npz", allow_pickle=False)
        offsets = expected["document_offsets"]
        other = Encoder.from_pretrained(FAMILIES / name, precision="float32", show_progress=False, **override)
        got = other.encode_documents(TEXTS["documents"])
        differs = [
            got[i].shape != (offsets[i + 1] - offsets[i], expected["document_embeddings"].shape[1])
            or not np.allclose(got[i], expected["document_embeddings"][offsets[i] : offsets[i + 1]], atol=1e-5)
            for i in range(len(got))
        ]
        assert any(differs), f"{name}: {override} changes nothing, so the fixture does not test it"


def test_residual_dense_is_applied(encoders: dict[str, Encoder]) -> None:
    dense = encoders["modernbert"]._model.projection[0]
    assert dense.use_residual
    assert dense.residual is not None
    states = torch.randn(3, dense.linear.in_features)
    want = torch.nn.functional.gelu(dense.linear(states)) + states @ dense.residual.weight.T
    torch.testing.assert_close(dense(states), want)


def test_decoders_expand_queries_with_the_end_of_sequence_token(encoders: dict[str, Encoder]) -> None:
    """PyLate's fallback where the tokenizer has no mask token (LFM2-ColBERT)."""
    assert encoders["lfm2"]._tokenizer.mask_id is None
    assert encoders["lfm2"]._ids.expansion == encoders["lfm2"]._tokenizer.eos_id


@pytest.mark.parametrize("name", ["bert", "stanford-bin"])
def test_fast_bert_reads_what_transformers_reads(name: str) -> None:
    """`bert` was saved by transformers 5.3 (LayerNorm gamma/beta), `stanford-bin` by
    transformers 4.57 as pytorch_model.bin under `bert.`: both equal transformers' BertModel."""
    from transformers import AutoModel

    folder = FAMILIES / name
    fast = load_transformer(folder)
    assert type(fast).__name__ == "Bert"
    reference = AutoModel.from_pretrained(str(folder)).eval()
    ids = torch.randint(5, fast.config.vocab_size, (2, 9))
    mask = torch.ones_like(ids)
    mask[1, 6:] = 0
    with torch.inference_mode():
        ours = fast(input_ids=ids, attention_mask=mask)[0]
        theirs = reference(input_ids=ids, attention_mask=mask)[0]
    torch.testing.assert_close(ours[mask.bool()], theirs[mask.bool()], atol=1e-5, rtol=1e-5)


def test_truncate_dim_keeps_the_first_dimensions_renormalised() -> None:
    full = Encoder.from_pretrained(FAMILIES / "bert", precision="float32", show_progress=False)
    short = Encoder.from_pretrained(FAMILIES / "bert", precision="float32", show_progress=False, truncate_dim=8)
    assert (full.dim, short.dim) == (16, 8)
    for a, b in zip(full.encode_documents(TEXTS["documents"]), short.encode_documents(TEXTS["documents"]), strict=True):
        want = a[:, :8] / np.linalg.norm(a[:, :8], axis=1, keepdims=True)
        np.testing.assert_allclose(b, want, atol=1e-6)
    assert short.fingerprint.digest != full.fingerprint.digest
    assert short.fingerprint.layout["truncate_dim"] == 8
    assert "truncate_dim" not in full.fingerprint.layout
    with pytest.raises(Exception, match="truncate_dim=32 is larger"):
        Encoder.from_pretrained(FAMILIES / "bert", show_progress=False, truncate_dim=32)


@pytest.mark.parametrize("name", ["xlmr", "modernbert", "roberta"])
def test_highlight_tokens_follow_the_prompted_lowercased_text(encoders: dict[str, Encoder], name: str) -> None:
    encoder = encoders[name]
    for text in TEXTS["documents"]:
        tokens, spans = encoder.document_tokens(text)
        assert len(tokens) == len(spans) == len(encoder.encode_documents([text])[0])
        real = spans[spans[:, 1] > spans[:, 0]]
        assert len(real)
        assert (real[:, 1] <= len(text)).all()
        assert (np.diff(real[:, 0]) >= 0).all()
        if not encoder.config.doc_prompt:  # stripped: the first token starts after the spaces
            assert real[0, 0] == encoder.piece_spans(text)[0, 0] == len(text) - len(text.lstrip())
    if encoder.config.doc_prompt:
        _, spans = encoder.document_tokens("word")
        assert (spans[:, 1] == 0).sum() >= 3  # the prompt's tokens are in, with no span in the text


def test_passages_leave_room_for_the_document_prompt(encoders: dict[str, Encoder]) -> None:
    """A passage of `passage_pieces` pieces is encoded whole, prompt and marker included."""
    encoder = encoders["xlmr"]
    long = TEXTS["documents"][3]
    pieces = encoder.piece_spans(long)
    assert encoder.passage_pieces < encoder.config.doc_maxlen - 3 < len(pieces)
    passage = long[: pieces[encoder.passage_pieces - 1, 1]]
    ids = encoder.tokenize([passage], is_query=False).input_ids[0].tolist()
    assert len(ids) <= encoder.config.doc_maxlen
    whole = encoder._tokenizer.ids([passage], special=False)[0]
    assert ids[-1 - len(whole[-3:]) : -1] == whole[-3:]  # its last pieces were not cut


# --- refusals: a folder that claims to be ColBERT loads all it declares or names the part ---


def _copy(name: str, tmp_path: Path) -> Path:
    folder = tmp_path / name
    shutil.copytree(FAMILIES / name, folder)
    return folder


def _edit_json(file: Path, **changes: object) -> None:
    data = json.loads(file.read_text(encoding="utf-8"))
    data.update(changes)
    file.write_text(json.dumps(data), encoding="utf-8")


def test_activations_outside_torch_nn_are_refused(tmp_path: Path) -> None:
    folder = _copy("modernbert", tmp_path)
    _edit_json(folder / "1_Dense" / "config.json", activation_function="os.system")
    with pytest.raises(CheckpointError, match=r"1_Dense.*not a torch\.nn module"):
        load_checkpoint(folder)
    _edit_json(folder / "1_Dense" / "config.json", activation_function="torch.nn.modules.activation.NoSuch")
    with pytest.raises(CheckpointError, match="unknown Dense activation"):
        load_checkpoint(folder)


def test_every_torch_activation_loads(tmp_path: Path) -> None:
    folder = _copy("modernbert", tmp_path)
    _edit_json(folder / "1_Dense" / "config.json", activation_function="torch.nn.modules.activation.SiLU")
    encoder = Encoder.from_pretrained(folder, show_progress=False)
    assert isinstance(encoder._model.projection[0].activation, torch.nn.SiLU)


def test_missing_dense_parts_are_named(tmp_path: Path) -> None:
    folder = _copy("modernbert", tmp_path)
    weights = load_file(str(folder / "1_Dense" / "model.safetensors"))
    save_file(
        {k: v for k, v in weights.items() if k != "residual.weight"}, str(folder / "1_Dense" / "model.safetensors")
    )
    with pytest.raises(CheckpointError, match=r"use_residual.*residual\.weight"):
        load_checkpoint(folder)
    save_file({k: v for k, v in weights.items() if k != "linear.bias"}, str(folder / "1_Dense" / "model.safetensors"))
    with pytest.raises(CheckpointError, match=r"linear\.bias"):
        load_checkpoint(folder)
    save_file(weights, str(folder / "1_Dense" / "model.safetensors"))
    _edit_json(folder / "1_Dense" / "config.json", scale=2.0)
    with pytest.raises(CheckpointError, match=r"Dense settings \['scale'\]"):
        load_checkpoint(folder)


def test_unknown_modules_and_paths_are_refused(tmp_path: Path) -> None:
    folder = _copy("bert", tmp_path)
    modules = json.loads((folder / "modules.json").read_text())
    extra = {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
    (folder / "modules.json").write_text(json.dumps([*modules, extra]))
    with pytest.raises(CheckpointError, match=r"Normalize.*not supported"):
        load_checkpoint(folder)
    modules[1]["path"] = "../../elsewhere"
    (folder / "modules.json").write_text(json.dumps(modules))
    with pytest.raises(CheckpointError, match="outside the checkpoint"):
        load_checkpoint(folder)
    (folder / "modules.json").write_text(json.dumps(modules[:1]))
    with pytest.raises(CheckpointError, match="no Dense projection"):
        load_checkpoint(folder)  # config_sentence_transformers.json says model_type ColBERT


def test_stanford_without_projection_is_refused(tmp_path: Path) -> None:
    folder = _copy("stanford-bin", tmp_path)
    weights = torch.load(folder / "pytorch_model.bin", weights_only=True)
    del weights["linear.weight"]
    torch.save(weights, folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match=r"HF_ColBERT.*linear\.weight"):
        load_checkpoint(folder)


def test_missing_marker_token_is_refused(tmp_path: Path) -> None:
    folder = _copy("bert", tmp_path)
    _edit_json(folder / "config_sentence_transformers.json", query_prefix="[NOT-A-TOKEN] ")
    with pytest.raises(CheckpointError, match="query marker token"):
        Encoder.from_pretrained(folder, show_progress=False)


def test_plain_encoder_says_it_is_zero_shot(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """One line per load, at INFO (the CLI shows library notices with -v)."""
    folder = tmp_path / "plain"
    folder.mkdir()
    for file in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        shutil.copy(FAMILIES / "bert" / file, folder / file)
    with caplog.at_level(logging.INFO, logger="colbert_retriever.model.checkpoint"):
        assert load_checkpoint(folder).format == "transformers"
    said = [r for r in caplog.records if "zero-shot" in r.getMessage()]
    assert len(said) == 1
