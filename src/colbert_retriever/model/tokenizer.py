"""A checkpoint's tokenizer: its `tokenizer.json` run by `tokenizers`, and the ids of its
special tokens.

transformers' fast tokenizers run the same `tokenizers.Tokenizer`, but importing
transformers takes about 1.5 s on a 2-core machine, which a one-shot `colbert-retriever
search` paid before its first query. So a folder whose tokenizer transformers would take
from `tokenizer.json` as it is (`Tokenizer.read`) is read here directly; anything else
(no `tokenizer.json`, a class that rewrites it, remote code) loads through transformers'
`AutoTokenizer` and runs its backend. tests/model/test_tokenizer.py checks both agree.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tokenizers import Encoding
from tokenizers import Tokenizer as Backend

from colbert_retriever.errors import CheckpointError

# Classes whose transformers implementation runs tokenizer.json unchanged (BERT's after the
# normaliser check in `_bert_settings_agree`); others may rebuild parts of it from their config.
_AS_SAVED = {"TokenizersBackend", "PreTrainedTokenizerFast"}
_BERT = {f"{name}Tokenizer{fast}" for name in ("Bert", "DistilBert", "Electra") for fast in ("", "Fast")}
_SPECIAL = ("mask_token", "pad_token", "eos_token", "unk_token")


class Tokenizer:
    """Text to token ids and character offsets, with the special ids the layout needs.

    Thread-safe: truncation is backend state, so each call sets it under a lock.
    """

    def __init__(self, backend: Backend, special: dict[str, int | None], *, truncation_side: str = "right") -> None:
        self._backend = backend
        self._backend.no_padding()
        self._side = truncation_side
        self._lock = threading.Lock()
        self.mask_id, self.pad_id = special.get("mask_token"), special.get("pad_token")
        self.eos_id, self.unk_id = special.get("eos_token"), special.get("unk_token")
        self.vocab: dict[str, int] = backend.get_vocab(with_added_tokens=True)
        self.n_special = int(backend.num_special_tokens_to_add(is_pair=False))  # e.g. [CLS] and [SEP]

    @classmethod
    def read(cls, folder: Path) -> Tokenizer | None:
        """The tokenizer in `folder` read without transformers, or None where transformers
        might tokenise differently from its `tokenizer.json` (the caller then asks it)."""
        config = _json(folder / "tokenizer_config.json")
        if not (folder / "tokenizer.json").is_file() or config is None or config.get("split_special_tokens"):
            return None
        if config.get("tokenizer_class") not in _AS_SAVED | _BERT:
            return None
        try:
            backend = Backend.from_file(str(folder / "tokenizer.json"))
        except Exception as exc:  # tokenizers raises a bare Exception for a malformed file
            msg = f"cannot load the tokenizer in {folder}: tokenizer.json is unreadable ({exc})"
            raise CheckpointError(msg) from exc
        if config["tokenizer_class"] in _BERT and not _bert_settings_agree(backend, config):
            return None
        tokens = {**config, **(_json(folder / "special_tokens_map.json") or {})}
        declared = [_content(token) for token in config.get("added_tokens_decoder", {}).values()]
        special: dict[str, int | None] = {}
        for name in _SPECIAL:
            content = _content(tokens.get(name))
            special[name] = None if content is None else backend.token_to_id(content)
            declared.append(content)
        if any(token is not None and backend.token_to_id(token) is None for token in declared):
            return None  # transformers would add a token the saved vocabulary lacks
        return cls(backend, special, truncation_side=config.get("truncation_side", "right"))

    @classmethod
    def of_transformers(cls, loaded: Any, folder: Path) -> Tokenizer:
        """Run the backend of a tokenizer transformers loaded (with its special ids)."""
        if not getattr(loaded, "is_fast", False):
            msg = f"{folder}: the tokenizer is a slow (Python) one; ColBERT needs a fast tokenizer (tokenizer.json)"
            raise CheckpointError(msg)
        special = {name: getattr(loaded, f"{name}_id") for name in _SPECIAL}
        return cls(loaded.backend_tokenizer, special, truncation_side=loaded.truncation_side)

    def encode(self, texts: Sequence[str], *, special: bool = True, max_length: int | None = None) -> list[Encoding]:
        """Each text's encoding (`.ids`, `.offsets`), cut to `max_length` tokens, special
        tokens included, as transformers' `tokenizer(texts, truncation=True)` cuts it."""
        with self._lock:
            if max_length is None:
                self._backend.no_truncation()
            else:
                self._backend.enable_truncation(max_length, direction=self._side)
            return self._backend.encode_batch(list(texts), add_special_tokens=special)

    def ids(self, texts: Sequence[str], *, special: bool = True, max_length: int | None = None) -> list[list[int]]:
        """Each text's token ids (see `encode`)."""
        return [encoding.ids for encoding in self.encode(texts, special=special, max_length=max_length)]

    def tokens(self, ids: Sequence[int]) -> list[str]:
        """The token text of each id."""
        return [self._backend.id_to_token(int(token_id)) or "" for token_id in ids]


def load_tokenizer(folder: Path, *, trust_remote_code: bool = False) -> Tokenizer:
    """The tokenizer of the checkpoint in `folder`: read directly where that is exact,
    through transformers' `AutoTokenizer` otherwise."""
    direct = None if trust_remote_code else Tokenizer.read(folder)
    if direct is not None:
        return direct
    from transformers import AutoTokenizer

    from colbert_retriever.model.transformer import quiet_transformers

    try:
        with quiet_transformers():
            try:
                loaded = AutoTokenizer.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
            except ValueError as exc:
                # transformers 5 names its tokenizer class TokenizersBackend, which 4.x lacks;
                # the tokenizer.json beside it is all a fast tokenizer needs
                if "TokenizersBackend" not in str(exc) or not (folder / "tokenizer.json").is_file():
                    raise
                from transformers import PreTrainedTokenizerFast

                loaded = PreTrainedTokenizerFast.from_pretrained(str(folder))
            return Tokenizer.of_transformers(loaded, folder)
    except (OSError, ValueError, KeyError) as exc:
        msg = f"cannot load the tokenizer in {folder}: {str(exc).splitlines()[0]}"
        raise CheckpointError(msg) from exc


def _bert_settings_agree(backend: Backend, config: dict[str, Any]) -> bool:
    """Whether the normaliser in tokenizer.json already does what the config's BERT flags
    say; where it does not, transformers' BERT tokenizers rebuild it from the flags."""
    state = json.loads(backend.normalizer.__getstate__()) if backend.normalizer is not None else {}
    wanted = {
        "lowercase": config.get("do_lower_case", True),
        "strip_accents": config.get("strip_accents"),
        "handle_chinese_chars": config.get("tokenize_chinese_chars", True),
    }
    return all(state.get(key, value) == value for key, value in wanted.items())


def _content(token: Any) -> str | None:
    """A special token's text, saved as a string or as an AddedToken dict."""
    if isinstance(token, dict):
        token = token.get("content")
    return token if isinstance(token, str) else None


def _json(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None
