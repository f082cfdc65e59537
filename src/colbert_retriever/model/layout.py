"""Token layout: how a text becomes the token ids the encoder reads, as the reference
implementations lay them out (see `encoder.py`): the prepared text (prompt, strip,
lowercase) and where its characters came from, and the special token ids a checkpoint's
layout needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from colbert_retriever.config import EncoderConfig
from colbert_retriever.errors import CheckpointError
from colbert_retriever.model.tokenizer import Tokenizer


@dataclass(frozen=True)
class TokenizedBatch:
    """Token ids of a batch, padded to one length.

    Attributes:
        input_ids: (n_texts, length) int64 ids fed to the encoder.
        attention_mask: (n_texts, length) int64, 1 where the encoder attends.
        keep: (n_texts, length) bool, True where the token's vector is returned.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    keep: torch.Tensor


@dataclass(frozen=True)
class Prepared:
    """A text as the tokenizer sees it (prompt, strip, lowercase applied), and where each
    of its characters came from in the original text (-1: the prompt)."""

    text: str
    origin: np.ndarray  # (len(text),) int64

    @classmethod
    def of(cls, text: str, prompt: str, config: EncoderConfig) -> Prepared:
        if not (prompt or config.strip or config.lowercase):
            return cls(text, np.arange(len(text), dtype=np.int64))
        full = prompt + text
        origin = np.arange(-len(prompt), len(text), dtype=np.int64)
        origin[: len(prompt)] = -1
        if config.strip:
            start = len(full) - len(full.lstrip())
            stop = len(full.rstrip())
            full, origin = full[start:stop], origin[start:stop]
        if config.lowercase:
            lowered = full.lower()
            if len(lowered) != len(full):  # a few characters lowercase to several
                widths = [len(char.lower()) for char in full]
                origin = np.repeat(origin, widths)[: len(lowered)]
                origin = np.pad(origin, (0, len(lowered) - len(origin)), mode="edge")
            full = lowered
        return cls(full, origin)

    def spans(self, offsets: Sequence[Sequence[int]]) -> np.ndarray:
        """(n, 2) spans in the original text of tokens at `offsets` in `self.text`; a token
        that is all prompt (or special) gets the empty span (0, 0)."""
        spans = np.asarray(offsets, dtype=np.int64).reshape(-1, 2)
        if self.origin.size == len(self.text) and np.array_equal(self.origin, np.arange(len(self.text))):
            return spans
        out = np.zeros_like(spans)
        for row, (start, stop) in enumerate(spans.tolist()):
            inside = self.origin[start:stop]
            inside = inside[inside >= 0]
            if inside.size:
                out[row] = (inside[0], inside[-1] + 1)
        return out


@dataclass(frozen=True)
class SpecialIds:
    """Token ids the layout needs: markers, the query expansion token, padding, skiplist,
    and how many tokens the layout adds around a document's own pieces."""

    query_marker: int | None
    doc_marker: int | None
    expansion: int | None
    pad: int
    skiplist: torch.Tensor
    n_special: int  # tokens the tokenizer adds around a text ([CLS] and [SEP])
    doc_prompt: int  # pieces of the document prompt


def special_ids(tokenizer: Tokenizer, config: EncoderConfig, fmt: str) -> SpecialIds:
    """Ids of the markers, the expansion token, padding and skiplist tokens, checked to exist.

    Queries are expanded with [MASK]; PyLate falls back to the end-of-sequence token where
    the tokenizer has no mask token (decoders). The skiplist is resolved as the checkpoint's
    reference does: PyLate looks each word up as a token (an unknown word is the unknown
    token), colbert-ai skips the first piece each word is tokenised to.
    """
    vocab = tokenizer.vocab

    def token_id(token: str, what: str) -> int:
        for candidate in (token, token.strip()):
            if candidate in vocab:
                return int(vocab[candidate])
        msg = (
            f"the tokenizer has no {what} token {token!r} (PyLate would add it with an untrained "
            "embedding; a trained checkpoint saves it in its tokenizer)"
        )
        raise CheckpointError(msg)

    expansion = tokenizer.mask_id
    if expansion is None and fmt == "pylate":
        expansion = tokenizer.eos_id
    if config.query_expansion and expansion is None:
        needs = "a mask or end-of-sequence token" if fmt == "pylate" else "a [MASK] token"
        msg = f"query expansion needs {needs} but the tokenizer has none"
        raise CheckpointError(msg)
    skip = set()
    for word in config.skiplist:
        if fmt == "pylate":
            found = vocab.get(word, tokenizer.unk_id)
            skip.update([] if found is None else [int(found)])
        elif fmt == "stanford" or word not in vocab:
            skip.update(tokenizer.ids([word], special=False)[0][:1])
        else:
            skip.add(int(vocab[word]))
    pad = tokenizer.pad_id if tokenizer.pad_id is not None else 0
    prompt = config.doc_prompt.lower() if config.lowercase else config.doc_prompt
    return SpecialIds(
        query_marker=None if config.query_marker is None else token_id(config.query_marker, "query marker"),
        doc_marker=None if config.doc_marker is None else token_id(config.doc_marker, "document marker"),
        expansion=expansion,
        pad=pad,
        skiplist=torch.tensor(sorted(skip), dtype=torch.int64),
        n_special=tokenizer.n_special,
        doc_prompt=len(tokenizer.ids([prompt], special=False)[0]) if prompt else 0,
    )
