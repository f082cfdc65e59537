"""Settings as frozen dataclasses, validated when built.

`EncoderConfig` holds how text becomes token vectors. Its layout fields (lengths, markers,
expansion, skiplist) are facts of a checkpoint: `checkpoint.load_checkpoint` reads them from
the checkpoint's own files, and you override one with `dataclasses.replace` only on purpose.
Its runtime fields (batch size, precision, progress, threads) never change the vectors beyond
float noise. `PlaidConfig` is how a compressed index is built (stored in it); `SearchConfig`
bounds the work of a search; `IndexConfig` is how documents are written.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Literal

from colbert_retriever.errors import ConfigError

Precision = Literal["auto", "float32", "bfloat16", "int8"]
Runtime = Literal["torch", "onnxruntime"]
ScoringDtype = Literal["auto", "float16", "float32"]
Unit = Literal["document", "passage"]
Mode = Literal["hybrid", "late", "lexical"]
Fusion = Literal["blend", "rrf", "saturated"]


def _require_positive(name: str, value: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        msg = f"{name} must be a positive integer, got {value!r}"
        raise ConfigError(msg)


@dataclass(frozen=True)
class EncoderConfig:
    """How queries and documents are tokenised and encoded.

    Attributes:
        query_maxlen: Query length in tokens, markers and [CLS]/[SEP] included. With
            `query_expansion` every query is padded with [MASK] to exactly this length.
        doc_maxlen: Longest document in tokens; longer ones are truncated (before the
            skiplist is applied, as colbert-ai and PyLate do).
        query_marker: Token put right after [CLS] in queries (`[unused0]` in ColBERT), or
            None for no marker.
        doc_marker: Token put right after [CLS] in documents (`[unused1]`), or None.
        query_expansion: Pad queries with [MASK] to `query_maxlen` (query augmentation);
            with the end-of-sequence token where the tokenizer has no [MASK] (decoders).
        attend_to_expansion: Whether the [MASK] padding is attended to by the encoder.
        skiplist: Tokens whose document vectors are dropped (punctuation in ColBERT).
        query_prompt: Text put before every query (PyLate's `prompts["query"]`, e.g.
            "search_query: "); its tokens get vectors like the query's own.
        doc_prompt: Text put before every document (PyLate's `prompts["document"]`).
        lowercase: Lowercase texts (prompt included) before tokenising (`do_lower_case`).
        strip: Strip whitespace around the prompted text before tokenising, as
            sentence-transformers does (whitespace changes the tokens of BPE tokenizers).
        truncate_dim: Keep the first `truncate_dim` dimensions of every vector (and
            L2-normalise again): Matryoshka checkpoints such as jina-colbert-v2 are
            trained for it. None keeps the checkpoint's dimension.
        batch_size: Texts per forward pass.
        precision: "auto" (default): bfloat16 autocast where the CPU has bfloat16 units
            (AVX-512 BF16 or AMX: ~3x faster, a tiny quality cost), float32 elsewhere
            (on AVX2-only CPUs bfloat16 is emulated and 5x slower); "float32" always
            reproduces colbert-ai and PyLate exactly; "bfloat16" forces autocast; "int8"
            (CPU only) computes every linear layer in int8, ~1.5-2x faster than float32
            for a small quality cost (benchmarks/encoding.py).
        runtime: "torch" (default), or "onnxruntime" (the `onnx` extra): the model exported
            to ONNX when the encoder is built, ~1.4x faster on a CPU for the same float32
            vectors, ~2.3x in int8 (what "auto" means there); precision "float32" or "int8".
        onnx_cache: With runtime "onnxruntime", a folder where the exported model is kept
            (one file per model, precision and library versions) so that later processes
            skip the export (a few seconds); None (default) keeps nothing on disk.
        show_progress: Show a tqdm bar while encoding more than one batch.
        n_threads: If set, `torch.set_num_threads(n_threads)` when the encoder is built.
        device: Where the model runs: "auto" (default: a CUDA GPU if torch sees one, else
            the CPU), "cpu", "cuda" or "cuda:N" (an error where there is none). On a GPU,
            precision "auto" is bfloat16 where the GPU supports it.
    """

    query_maxlen: int = 32
    doc_maxlen: int = 180
    query_marker: str | None = "[unused0]"
    doc_marker: str | None = "[unused1]"
    query_expansion: bool = True
    attend_to_expansion: bool = False
    skiplist: tuple[str, ...] = ()
    query_prompt: str = ""
    doc_prompt: str = ""
    lowercase: bool = False
    strip: bool = False
    truncate_dim: int | None = None
    batch_size: int = 32
    precision: Precision = "auto"
    runtime: Runtime = "torch"
    onnx_cache: str | None = None
    show_progress: bool = True
    n_threads: int | None = None
    device: str = "auto"

    def __post_init__(self) -> None:
        _check_device(self.device)
        _require_positive("query_maxlen", self.query_maxlen)
        _require_positive("doc_maxlen", self.doc_maxlen)
        _require_positive("batch_size", self.batch_size)
        if self.n_threads is not None:
            _require_positive("n_threads", self.n_threads)
        if self.truncate_dim is not None:
            _require_positive("truncate_dim", self.truncate_dim)
        for name in ("query_prompt", "doc_prompt"):
            if not isinstance(getattr(self, name), str):
                msg = f"{name} must be a string, got {getattr(self, name)!r}"
                raise ConfigError(msg)
        minimum = 3 if self.query_marker else 2
        if self.query_maxlen < minimum or self.doc_maxlen < minimum:
            msg = f"query_maxlen and doc_maxlen must leave room for [CLS], a marker and [SEP] (>= {minimum})"
            raise ConfigError(msg)
        if self.precision not in ("auto", "float32", "bfloat16", "int8"):
            msg = f"precision must be 'auto', 'float32', 'bfloat16' or 'int8', got {self.precision!r}"
            raise ConfigError(msg)
        if self.runtime not in ("torch", "onnxruntime"):
            msg = f"runtime must be 'torch' or 'onnxruntime', got {self.runtime!r}"
            raise ConfigError(msg)
        if self.runtime == "onnxruntime" and self.precision == "bfloat16":
            msg = "runtime 'onnxruntime' computes in float32 or int8, not bfloat16"
            raise ConfigError(msg)
        if self.onnx_cache is not None and self.runtime != "onnxruntime":
            msg = "onnx_cache keeps ONNX exports: it needs runtime='onnxruntime'"
            raise ConfigError(msg)
        object.__setattr__(self, "skiplist", tuple(self.skiplist))

    def layout(self) -> dict[str, object]:
        """The fields that decide which vectors a text gets (stored in an index's manifest).

        Fields added since the first release are left out while they hold their default,
        so an index built before them keeps its fingerprint."""
        runtime = {"batch_size", "precision", "runtime", "onnx_cache", "show_progress", "n_threads", "device"}
        later = {"query_prompt": "", "doc_prompt": "", "lowercase": False, "strip": False, "truncate_dim": None}
        return {k: v for k, v in asdict(self).items() if k not in runtime and not (k in later and later[k] == v)}


IndexType = Literal["exact", "plaid", "auto"]


@dataclass(frozen=True)
class PlaidConfig:
    """How a compressed (PLAID) index is built; recorded in the index when it is created.

    Attributes:
        nbits: Bits per dimension of a token's residual: 1, 2 or 4. At dim 128 a token
            takes 4 + 16 * nbits bytes (36 at nbits 2, against 256 in float16): its
            centroid id and norm in 2 bytes each (up to 65,536 centroids), the residual.
        n_centroids: Centroids to train; None picks ColBERTv2's 16 * sqrt(tokens) rounded
            down to a power of two, capped by `max_centroids`, by tokens / 32, and so that
            centroids * dim <= 2**21: assigning a token to its centroid costs centroids * dim
            multiply-adds, and 2**21 (16,384 centroids at dim 128, 4,096 at dim 384) keeps
            that a small share of the encoding time on a 2-core CPU.
        max_centroids: Cap of the automatic choice.
        kmeans_iters: k-means iterations over a sample of 16 tokens per centroid (4, as
            colbert-ai: more barely moves quality and costs build time).
        seed: k-means seed.
    """

    nbits: int = 2
    n_centroids: int | None = None
    max_centroids: int = 1 << 16
    kmeans_iters: int = 4
    seed: int = 0

    def __post_init__(self) -> None:
        if self.nbits not in (1, 2, 4):
            msg = f"nbits must be 1, 2 or 4, got {self.nbits!r}"
            raise ConfigError(msg)
        if self.n_centroids is not None:
            _require_positive("n_centroids", self.n_centroids)
        _require_positive("max_centroids", self.max_centroids)
        _require_positive("kmeans_iters", self.kmeans_iters)


@dataclass(frozen=True)
class SearchConfig:
    """Bounds and knobs of a search.

    Attributes:
        max_scores_per_chunk: Exact search: query-token x document-token similarities
            computed at once (each chunk holds whole documents, at least one). Peak extra
            memory is about 10 bytes per similarity: the default bounds it near 160 MB.
        ncells: PLAID index: centroids probed per query token (None: grows with k).
        ndocs: PLAID index: candidates reranked exactly (None: grows with k; never < k).
        centroid_score_threshold: PLAID index: skip probed cells scoring below this
            (None: no pruning).
        scoring_dtype: The type stored float16 vectors are scored in: "auto" (default)
            float16 where this CPU multiplies it natively, float32 where half math is
            emulated (AVX2-only CPUs: 17x faster there), float16 on a GPU; or forced.
        device: Where exact MaxSim runs: "cpu" (default), "cuda", "cuda:N" or "auto" (a
            GPU if torch sees one). Each scored block is copied to the GPU: it pays for
            large indexes and batches of queries.
        passage_weights: How a document split into passages is scored from them: the
            weighted sum of its best passages' MaxSim (among those the search found), best
            first. (1.0,) is MaxP, the best passage alone (the default: it wins on SciFact
            and scifact_long, benchmarks/passages.py); (1.0, 0.5) adds half the second.
        fusion: Hybrid search: how the late-interaction and BM25 scores of the candidates
            become one. "saturated" (default): `late_weight` x MaxSim over the query's
            tokens + (1 - `late_weight`) x BM25 / (BM25 + `saturation`), a score that
            depends on no other candidate, so a threshold on it means the same in every
            search. "blend": `late_weight` x MaxSim + (1 - `late_weight`) x BM25, each
            min-max normalised over the candidates (the top hit scores near 1 even for
            nonsense). "rrf": reciprocal-rank fusion, the sum of 1 / (`rrf_k` + rank)
            over both rankings. At 20 candidates and k=10 the saturated fusion ranked as
            the blend did (nDCG@10 within 0.002, +0.006 on medline) on SciFact, nfcorpus,
            medline and scifact_long; rrf lost to both everywhere (benchmarks/scores.py).
        late_weight: The weight on MaxSim, in [0, 1], of the saturated fusion and the
            blend. On SciFact, nfcorpus, medline and scifact_long, 0.8 was within 0.002
            of the best blend weight and 0.007 of the best saturated setting
            (benchmarks/hybrid.py, benchmarks/scores.py).
        rrf_k: Reciprocal-rank fusion's constant.
        saturation: The saturated fusion's BM25 at which its lexical part is one half
            (3 to 30 move nDCG@10 by under 0.007 on the same collections).
        candidates: Hybrid search: documents taken from each side's ranking (at least k);
            every candidate gets both scores. 20 gave the nDCG@10 of 50 and 100 on the
            same collections; each lexical-only candidate costs a MaxSim over all its
            passages.
    """

    max_scores_per_chunk: int = 1 << 24
    ncells: int | None = None
    ndocs: int | None = None
    centroid_score_threshold: float | None = None
    scoring_dtype: ScoringDtype = "auto"
    device: str = "cpu"
    passage_weights: tuple[float, ...] = (1.0,)
    fusion: Fusion = "saturated"
    late_weight: float = 0.8
    rrf_k: int = 60
    saturation: float = 10.0
    candidates: int = 20

    def __post_init__(self) -> None:
        _check_device(self.device)
        _require_positive("max_scores_per_chunk", self.max_scores_per_chunk)
        _require_positive("rrf_k", self.rrf_k)
        _require_positive("candidates", self.candidates)
        if isinstance(self.saturation, bool) or not isinstance(self.saturation, (int, float)) or self.saturation <= 0:
            msg = f"saturation must be a positive number, got {self.saturation!r}"
            raise ConfigError(msg)
        if self.fusion not in ("blend", "rrf", "saturated"):
            msg = f"fusion must be 'blend', 'rrf' or 'saturated', got {self.fusion!r}"
            raise ConfigError(msg)
        weight = self.late_weight
        if isinstance(weight, bool) or not isinstance(weight, (int, float)) or not 0 <= weight <= 1:
            msg = f"late_weight must be a number in [0, 1], got {weight!r}"
            raise ConfigError(msg)
        weights = self.passage_weights
        if (
            not isinstance(weights, tuple)
            or not weights
            or not all(isinstance(w, (int, float)) and not isinstance(w, bool) and w >= 0 for w in weights)
        ):
            msg = f"passage_weights must be a non-empty tuple of non-negative numbers, got {weights!r}"
            raise ConfigError(msg)
        if self.scoring_dtype not in ("auto", "float16", "float32"):
            msg = f"scoring_dtype must be 'auto', 'float16' or 'float32', got {self.scoring_dtype!r}"
            raise ConfigError(msg)
        for name in ("ncells", "ndocs"):
            if getattr(self, name) is not None:
                _require_positive(name, getattr(self, name))


@dataclass(frozen=True)
class Chunking:
    """How a text longer than the model reads is split into passages (`ColBERT(chunking=)`).

    Passages are counted in the model's own word pieces and fill `doc_maxlen` (markers
    included); each ends at a paragraph break if one falls in its last half, else at a
    sentence end, else between words, and the next starts `overlap` word pieces earlier.

    Attributes:
        overlap: Word pieces each passage repeats from the end of the one before, so a
            sentence cut at a boundary is read whole by one of them.
        max_tokens: Word pieces per passage, markers excluded; None fills `doc_maxlen`.
    """

    overlap: int = 32
    max_tokens: int | None = None

    def __post_init__(self) -> None:
        if isinstance(self.overlap, bool) or not isinstance(self.overlap, int) or self.overlap < 0:
            msg = f"overlap must be a non-negative integer, got {self.overlap!r}"
            raise ConfigError(msg)
        if self.max_tokens is not None:
            _require_positive("max_tokens", self.max_tokens)
            if self.overlap * 2 > self.max_tokens:
                msg = f"overlap ({self.overlap}) must be at most half of max_tokens ({self.max_tokens})"
                raise ConfigError(msg)


@dataclass(frozen=True)
class IndexConfig:
    """How documents are written.

    Attributes:
        docs_per_segment: Rows encoded and written per segment while adding (a document,
            or each passage of a long one); bounds the memory an `add` of a large iterable
            needs.
        lock_timeout: Seconds a writer waits for another process's write lock.
    """

    docs_per_segment: int = 1024
    lock_timeout: float = 60.0

    def __post_init__(self) -> None:
        _require_positive("docs_per_segment", self.docs_per_segment)
        if self.lock_timeout < 0:
            msg = f"lock_timeout must be >= 0 seconds, got {self.lock_timeout!r}"
            raise ConfigError(msg)


def _check_device(device: object) -> None:
    if not isinstance(device, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", device):
        msg = f"device must be 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
        raise ConfigError(msg)
