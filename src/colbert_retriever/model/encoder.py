"""Texts to per-token vectors: the only module that builds torch models.

Token layout follows the reference implementations (colbert-ai's `QueryTokenizer` /
`DocTokenizer`, PyLate's `ColBERT.tokenize`), checked against their recorded outputs in
tests/test_parity.py:

* the text gets its prompt in front (PyLate's ``prompts``), then is stripped and lowercased
  where the checkpoint says so, as sentence-transformers prepares text;
* ``[CLS] marker tokens... [SEP]``, truncated so the whole sequence fits the max length (the
  marker goes after the first token, whatever the tokenizer puts there);
* queries padded with [MASK] (the end-of-sequence token where there is no [MASK]) to
  ``query_maxlen`` (query augmentation); the padding is attended to only if the checkpoint
  says so, yet every position gets a vector;
* documents keep the vectors of their real tokens minus the skiplist (punctuation);
* every vector is L2-normalised (after `truncate_dim`, for Matryoshka checkpoints).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from colbert_retriever.config import EncoderConfig
from colbert_retriever.devices import resolve_device
from colbert_retriever.errors import CheckpointError, ConfigError, IndexCorruptError
from colbert_retriever.model.checkpoint import Checkpoint, load_checkpoint
from colbert_retriever.model.fingerprint import ModelFingerprint
from colbert_retriever.model.layout import Prepared, TokenizedBatch, special_ids
from colbert_retriever.model.onnx import OnnxModel
from colbert_retriever.model.precision import encoding_precision, quantize
from colbert_retriever.model.projection import Dense, TokenVectors
from colbert_retriever.model.tokenizer import Tokenizer, load_tokenizer
from colbert_retriever.model.transformer import load_transformer
from colbert_retriever.validation import check_texts

logger = logging.getLogger(__name__)


class Encoder:
    """A ColBERT encoder: `encode_queries` and `encode_documents` give one vector per token.

    Build it with `Encoder.from_pretrained(model)`; `model` is a local folder or a Hugging
    Face id in any format `checkpoint.load_checkpoint` reads. Encoding is thread-safe.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        transformer: Any,
        tokenizer: Tokenizer,
        config: EncoderConfig,
    ) -> None:
        self.checkpoint = checkpoint
        self.config = config
        self.device = resolve_device(config.device)
        projection = torch.nn.Sequential(*(Dense(layer) for layer in checkpoint.projection))
        self._model = TokenVectors(transformer, projection).eval().to(self.device)
        self._tokenizer = tokenizer
        self._reported_cut = False  # a query longer than query_maxlen is logged once
        self.precision = encoding_precision(config.precision, self.device, config.runtime)  # what "auto" resolved to
        self._ids = special_ids(tokenizer, config, checkpoint.format)
        last = checkpoint.projection[-1].weight.shape[0] if checkpoint.projection else transformer.config.hidden_size
        if config.truncate_dim is not None and config.truncate_dim > last:
            msg = f"truncate_dim={config.truncate_dim} is larger than the model's {last} dimensions"
            raise ConfigError(msg)
        self.dim = int(config.truncate_dim or last)
        self._fingerprint: ModelFingerprint | None = None
        self._onnx: OnnxModel | None = None
        if config.runtime == "onnxruntime":  # exported once, here, from the float32 weights
            cache = None if config.onnx_cache is None else Path(config.onnx_cache)
            threads, int8 = torch.get_num_threads(), self.precision == "int8"
            self._onnx = OnnxModel(self._model, int8=int8, threads=threads, cache=cache, digest=self.fingerprint.digest)
        elif self.precision == "int8":  # quantised once, here, after the fingerprint read the float weights
            _ = self.fingerprint
            quantize(self._model)

    @classmethod
    def from_pretrained(
        cls,
        model: str | Path,
        config: EncoderConfig | None = None,
        *,
        trust_remote_code: bool = False,
        **overrides: Any,
    ) -> Encoder:
        """Load a checkpoint folder or hub id.

        Args:
            model: Local folder or Hugging Face id (resolved through the local cache).
            config: Replaces the settings read from the checkpoint altogether.
            trust_remote_code: Allow the checkpoint to run its own Python code. Off by
                default; turn it on only for checkpoints you trust.
            **overrides: `EncoderConfig` fields to change, e.g. `doc_maxlen=300`,
                `precision="bfloat16"`, `batch_size=64`.

        Raises:
            CheckpointError: the folder is missing, incomplete or of an unknown format.
            ConfigError: an override is not an `EncoderConfig` field or is invalid.
        """
        checkpoint = load_checkpoint(model)
        config = config or checkpoint.config
        fields = {f.name for f in dataclasses.fields(EncoderConfig)}
        unknown = sorted(set(overrides) - fields)
        if unknown:
            msg = f"unknown encoder setting(s) {unknown}; valid ones: {sorted(fields)}"
            raise ConfigError(msg)
        config = dataclasses.replace(config, **overrides)
        if config.n_threads is not None:
            torch.set_num_threads(config.n_threads)

        tokenizer = load_tokenizer(checkpoint.path, trust_remote_code=trust_remote_code)
        transformer = load_transformer(checkpoint.path, trust_remote_code=trust_remote_code)
        hidden = int(transformer.config.hidden_size)
        if checkpoint.projection and checkpoint.projection[0].weight.shape[1] != hidden:
            shape = tuple(checkpoint.projection[0].weight.shape)
            msg = f"{checkpoint.path}: projection expects {shape[1]} inputs but the encoder's hidden size is {hidden}"
            raise CheckpointError(msg)
        return cls(checkpoint, transformer, tokenizer, config)

    @classmethod
    def for_index(
        cls,
        recorded: dict[str, Any],
        where: str,
        *,
        model: str | Path | None = None,
        trust_remote_code: bool = False,
        **overrides: Any,
    ) -> Encoder:
        """The encoder for the index `where`, filled by the model whose fingerprint it
        `recorded`: that model's token layout, not the checkpoint's defaults.

        Args:
            model: The checkpoint (default: the recorded name); it must be the same model.
            **overrides: Runtime `EncoderConfig` fields (batch_size, precision, ...).

        Raises:
            IndexCorruptError: the recorded settings are unreadable.
            DimensionMismatchError, ModelMismatchError: `model` is not the index's model.
        """
        try:
            config = EncoderConfig(**recorded["layout"])
        except (KeyError, TypeError, ValueError) as exc:
            msg = f"{where}: the model settings it records are unreadable ({exc})"
            raise IndexCorruptError(msg) from exc
        name = model if model is not None else recorded["name"]
        encoder = cls.from_pretrained(name, config=config, trust_remote_code=trust_remote_code, **overrides)
        encoder.fingerprint.check_index(recorded, where)
        return encoder

    @property
    def fingerprint(self) -> ModelFingerprint:
        """Identity of the model and token layout, compared when an index is opened."""
        if self._fingerprint is None:
            digest = hashlib.sha256(repr(sorted(self.config.layout().items())).encode())
            modules = (self._model.transformer, self._model.projection)
            for module in modules:
                for name, tensor in sorted(module.state_dict().items()):
                    if name.startswith("pooler."):  # unused by ColBERT, often randomly initialised
                        continue
                    if module is self._model.projection:  # the names indexes were fingerprinted with:
                        name = name.replace(".linear.", ".0.")  # a Dense was Sequential(linear, act)
                    digest.update(name.encode() + repr(tuple(tensor.shape)).encode())
                    sample = tensor.detach().flatten()[:1024].float().contiguous()
                    digest.update(sample.numpy().tobytes())
            self._fingerprint = ModelFingerprint(
                name=self.checkpoint.name,
                format=self.checkpoint.format,
                dim=self.dim,
                digest=digest.hexdigest()[:32],
                layout=self.config.layout(),
                precision=self.precision if self.config.runtime == "torch" else f"onnxruntime {self.precision}",
            )
        return self._fingerprint

    def tokenize(self, texts: Sequence[str], *, is_query: bool) -> TokenizedBatch:
        """Token ids exactly as the encoder sees them (markers, truncation, padding)."""
        texts = check_texts(texts, "queries" if is_query else "documents")
        return self._pad(self._token_ids(texts, is_query=is_query), is_query=is_query)

    def encode_queries(self, queries: Sequence[str]) -> list[np.ndarray]:
        """One (n_tokens, dim) float32 array per query; `query_maxlen` rows with expansion."""
        return self._encode(check_texts(queries, "queries"), is_query=True)

    def encode_documents(self, documents: Sequence[str]) -> list[np.ndarray]:
        """One (n_kept_tokens, dim) float32 array per document, skiplist and padding dropped."""
        return self._encode(check_texts(documents, "documents"), is_query=False)

    @property
    def passage_pieces(self) -> int:
        """Word pieces of a document's own text that fit `doc_maxlen`: less the special
        tokens ([CLS], [SEP]), the marker and the document prompt's pieces."""
        return self.config.doc_maxlen - self._ids.n_special - (self._ids.doc_marker is not None) - self._ids.doc_prompt

    def piece_spans(self, text: str) -> np.ndarray:
        """(n_pieces, 2) character spans of `text`'s word pieces, uncut, no special tokens."""
        prepared = Prepared.of(text, "", self.config)
        return prepared.spans(self._tokenizer.encode([prepared.text], special=False)[0].offsets)

    def document_tokens(self, text: str) -> tuple[list[str], np.ndarray]:
        """The tokens `encode_documents([text])` returns vectors for, in order: their texts
        and (n, 2) character spans in `text` (special and prompt tokens: an empty span at 0)."""
        marker, skip = self._ids.doc_marker, set(self._ids.skiplist.tolist())
        prepared = Prepared.of(text, self.config.doc_prompt, self.config)
        budget = self.config.doc_maxlen - (marker is not None)
        encoded = self._tokenizer.encode([prepared.text], max_length=budget)[0]
        ids, spans = list(encoded.ids), [tuple(span) for span in prepared.spans(encoded.offsets)]
        if marker is not None:
            ids, spans = [*ids[:1], marker, *ids[1:]], [*spans[:1], (0, 0), *spans[1:]]
        kept = [i for i, token_id in enumerate(ids) if token_id not in skip]
        tokens = self._tokenizer.tokens([ids[i] for i in kept])
        return tokens, np.array([spans[i] for i in kept], dtype=np.int64).reshape(-1, 2)

    def query_tokens(self, query: str) -> list[str]:
        """The tokens `encode_queries([query])` returns vectors for, expansion included."""
        batch = self.tokenize([query], is_query=True)
        return self._tokenizer.tokens(batch.input_ids[0][batch.keep[0]].tolist())

    def _token_ids(self, texts: list[str], *, is_query: bool) -> list[list[int]]:
        cfg = self.config
        marker = self._ids.query_marker if is_query else self._ids.doc_marker
        maxlen = cfg.query_maxlen if is_query else cfg.doc_maxlen
        prompt = cfg.query_prompt if is_query else cfg.doc_prompt
        texts = [Prepared.of(text, prompt, cfg).text for text in texts]
        ids = self._tokenizer.ids(texts, max_length=maxlen - (marker is not None))
        if is_query and not self._reported_cut:
            self._report_cut_query(texts, maxlen - (marker is not None))
        if marker is not None:
            ids = [[*seq[:1], marker, *seq[1:]] for seq in ids]
        return ids

    def _report_cut_query(self, texts: list[str], max_length: int) -> None:
        """Log (once per encoder, at INFO) that a query was longer than `query_maxlen`."""
        lengths = [len(seq) for seq in self._tokenizer.ids(texts)]
        cut = next((i for i, n in enumerate(lengths) if n > max_length), None)
        if cut is not None:
            self._reported_cut = True
            logger.info(
                "a query of %d tokens was cut at query_maxlen=%d: %r (reported once)",
                lengths[cut],
                self.config.query_maxlen,
                texts[cut][:80],
            )

    def _pad(self, ids: list[list[int]], *, is_query: bool) -> TokenizedBatch:
        cfg = self.config
        expand = is_query and cfg.query_expansion
        length = cfg.query_maxlen if expand else max(len(seq) for seq in ids)
        pad_id = self._ids.pad
        if expand:
            assert self._ids.expansion is not None, "checked when the encoder was built"
            pad_id = self._ids.expansion
        input_ids = torch.full((len(ids), length), pad_id, dtype=torch.int64)
        real = torch.zeros((len(ids), length), dtype=torch.bool)
        for row, seq in enumerate(ids):
            input_ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.int64)
            real[row, : len(seq)] = True
        attention = real | (expand and cfg.attend_to_expansion)
        if expand:
            keep = torch.ones_like(real)
        elif is_query:
            keep = real
        else:
            keep = real & ~torch.isin(input_ids, self._ids.skiplist)
        return TokenizedBatch(input_ids=input_ids, attention_mask=attention.long(), keep=keep)

    def _encode(self, texts: list[str], *, is_query: bool) -> list[np.ndarray]:
        if not texts:
            return []
        ids = self._token_ids(texts, is_query=is_query)
        order = sorted(range(len(ids)), key=lambda i: len(ids[i]), reverse=True)
        size = self.config.batch_size
        starts = range(0, len(order), size)
        bar = tqdm(
            starts,
            desc="Encoding queries" if is_query else "Encoding documents",
            unit="batch",
            disable=not self.config.show_progress or len(starts) < 2,
            leave=False,
        )
        out: list[np.ndarray] = [np.empty(0)] * len(texts)
        for start in bar:
            rows = order[start : start + size]
            batch = self._pad([ids[i] for i in rows], is_query=is_query)
            vectors = self._forward(batch)  # (batch, length, dim) float32
            for row, i in enumerate(rows):
                out[i] = vectors[row][batch.keep[row].numpy()]
        return out

    def _forward(self, batch: TokenizedBatch) -> np.ndarray:
        autocast = torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.precision == "bfloat16")
        with torch.inference_mode(), autocast:
            ids, mask = batch.input_ids.to(self.device), batch.attention_mask.to(self.device)
            vectors = (self._onnx or self._model)(ids, mask)
        vectors = torch.nn.functional.normalize(vectors[..., : self.dim].float(), p=2, dim=-1)
        return vectors.cpu().numpy()
