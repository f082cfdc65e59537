"""The tokenizer read without transformers tokenises as transformers' own does, and
folders it cannot be sure of go through transformers."""

from __future__ import annotations

import json
import shutil
import threading
from pathlib import Path

import pytest
from transformers import AutoTokenizer

from colbert_retriever import CheckpointError
from colbert_retriever.model.tokenizer import Tokenizer, load_tokenizer

FAMILIES = Path(__file__).parent.parent / "fixtures" / "families"
TEXTS = [
    "Hello World!",
    "  Café déjà vu — naïve 東京 ",
    "ÀÉÎ ß ǅ İstanbul, emoji 🤖 tab\tnew\nline",
    "the quick brown fox jumps over the lazy dog " * 30,
    "",
]


def _folders(checkpoints: dict[str, Path]) -> list[Path]:
    return [*sorted(p for p in FAMILIES.iterdir() if (p / "tokenizer.json").is_file()), checkpoints["plain"]]


def _reference(folder: Path) -> object:
    try:
        return AutoTokenizer.from_pretrained(str(folder))
    except ValueError:  # transformers 4.x lacks the class name 5.x saves; the file is the same
        from transformers import PreTrainedTokenizerFast

        return PreTrainedTokenizerFast.from_pretrained(str(folder))


def test_every_fixture_is_read_directly_and_matches_transformers(checkpoints) -> None:
    for folder in _folders(checkpoints):
        ours, reference = Tokenizer.read(folder), _reference(folder)
        assert ours is not None, folder.name
        for max_length in (None, 12):
            cut = {"truncation": max_length is not None, "max_length": max_length}
            expected = reference(TEXTS, **cut, return_offsets_mapping=True)
            got = ours.encode(TEXTS, max_length=max_length)
            assert [e.ids for e in got] == [list(ids) for ids in expected["input_ids"]], folder.name
            assert [e.offsets for e in got] == [[tuple(s) for s in spans] for spans in expected["offset_mapping"]]
        bare = reference(TEXTS, add_special_tokens=False)["input_ids"]
        assert ours.ids(TEXTS, special=False) == [list(ids) for ids in bare], folder.name
        assert ours.vocab == reference.get_vocab()
        assert ours.n_special == reference.num_special_tokens_to_add(pair=False)
        ids = ours.ids(TEXTS[:3])[2]
        assert ours.tokens(ids) == reference.convert_ids_to_tokens(ids)
        specials = (reference.mask_token_id, reference.pad_token_id, reference.eos_token_id, reference.unk_token_id)
        assert (ours.mask_id, ours.pad_id, ours.eos_id, ours.unk_id) == specials, folder.name


def _copy(folder: Path, tmp_path: Path, **config: object) -> Path:
    """`folder` copied with `config` in its tokenizer_config.json (and its special tokens in
    special_tokens_map.json, which transformers 4.x saves too, and which wins over the config)."""
    out = tmp_path / folder.name
    shutil.copytree(folder, out)
    for name, keys in (("tokenizer_config.json", config), ("special_tokens_map.json", {"mask_token"} & set(config))):
        if (out / name).is_file():
            saved = json.loads((out / name).read_text())
            (out / name).write_text(json.dumps({**saved, **{key: config[key] for key in keys}}))
    return out


def test_a_bert_config_that_overrides_its_tokenizer_json_goes_through_transformers(checkpoints, tmp_path) -> None:
    """transformers rebuilds a BERT normaliser whose lowercasing disagrees with the config."""
    cased = _copy(checkpoints["plain"], tmp_path, do_lower_case=False)
    assert Tokenizer.read(cased) is None
    tokenizer, reference = load_tokenizer(cased), _reference(cased)
    assert tokenizer.ids(["Hello World"]) == [reference("Hello World")["input_ids"]]
    assert tokenizer.ids(["Hello World"]) != Tokenizer.read(checkpoints["plain"]).ids(["Hello World"])  # type: ignore[union-attr]


@pytest.mark.parametrize(
    "config",
    [
        {"tokenizer_class": "LlamaTokenizerFast"},  # may rewrite BOS/EOS handling
        {"split_special_tokens": True},
        {"mask_token": "<not-in-the-vocabulary>"},  # transformers would add it
    ],
)
def test_folders_it_cannot_be_sure_of_are_left_to_transformers(checkpoints, tmp_path, config) -> None:
    assert Tokenizer.read(_copy(checkpoints["plain"], tmp_path, **config)) is None


def test_a_folder_without_tokenizer_json_loads_through_transformers(checkpoints, tmp_path) -> None:
    folder = tmp_path / "vocab-only"
    folder.mkdir()
    for name in ("vocab.txt", "config.json"):
        shutil.copy(checkpoints["plain"] / name, folder / name)
    tokenizer, reference = load_tokenizer(folder), AutoTokenizer.from_pretrained(str(folder))
    assert tokenizer.ids(TEXTS) == [list(ids) for ids in reference(TEXTS)["input_ids"]]
    assert tokenizer.mask_id == reference.mask_token_id is not None


def test_an_unreadable_tokenizer_is_a_checkpoint_error(checkpoints, tmp_path) -> None:
    folder = _copy(checkpoints["plain"], tmp_path)
    (folder / "tokenizer.json").write_text('{"model": ')
    with pytest.raises(CheckpointError, match=r"tokenizer\.json is unreadable"):
        load_tokenizer(folder)


def test_threads_cutting_at_different_lengths_never_mix(checkpoints) -> None:
    tokenizer = Tokenizer.read(checkpoints["plain"])
    assert tokenizer is not None
    text = [TEXTS[3]]
    expected = {n: tokenizer.ids(text, max_length=n) for n in (6, 9, None)}
    errors: list[str] = []

    def run(n: int | None) -> None:
        for _ in range(200):
            if tokenizer.ids(text, max_length=n) != expected[n]:
                errors.append(f"max_length {n}")

    threads = [threading.Thread(target=run, args=(n,)) for n in expected]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
