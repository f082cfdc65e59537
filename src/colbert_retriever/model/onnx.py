"""The encoder's model in ONNX Runtime (the optional `onnx` extra): exported here, from the
loaded checkpoint, into a temporary folder that is gone once the session holds the model.

ONNX Runtime fuses attention and layer norms into kernels of its own: on a 2-core CPU it
encodes the same float32 vectors ~1.5x faster than torch, and its dynamic int8 (weights per
output channel) faster still (benchmarks/encoding.py). Exporting and quantising take a few
seconds, once per encoder; only where the user names a cache folder is the exported model
kept there, one file per model, precision and library versions, for later processes.
"""

from __future__ import annotations

import hashlib
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch

from colbert_retriever._version import __version__
from colbert_retriever.atomic import write_bytes
from colbert_retriever.errors import CheckpointError, ConfigError
from colbert_retriever.model.projection import TokenVectors

logger = logging.getLogger(__name__)


class OnnxModel:
    """An ONNX Runtime session of `model`, called as the torch module would be."""

    def __init__(
        self, model: TokenVectors, *, int8: bool, threads: int, cache: Path | None = None, digest: str = ""
    ) -> None:
        """Export `model` (float32 weights), or load the export `cache` keeps for the model
        whose fingerprint digest is `digest`."""
        try:
            import onnxruntime
        except ImportError as exc:
            msg = "runtime 'onnxruntime' needs the onnx extra: pip install 'colbert-retriever[onnx]'"
            raise ConfigError(msg) from exc
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        # no busy-waiting between runs: the search that follows a query's encoding needs the cores
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")

        def session(data: bytes) -> Any:
            return onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])

        versions = f"{digest} {int8} {__version__} {torch.__version__} {onnxruntime.__version__}"
        cached = cache / f"{hashlib.sha256(versions.encode()).hexdigest()[:24]}.onnx" if cache else None
        if cached is not None and cached.is_file():
            try:
                self._session = session(cached.read_bytes())
                return
            except Exception as exc:  # onnxruntime's own error types; the export below replaces the file
                logger.warning("%s is unreadable (%s); exporting the model again", cached, exc)
        with tempfile.TemporaryDirectory(prefix="colbert-onnx-") as scratch:
            path = Path(scratch) / "model.onnx"
            _export(model, path)
            self._session = session(path.read_bytes())
            _check(model, self)
            if int8:
                from onnxruntime.quantization import QuantType, quantize_dynamic

                quantized = Path(scratch) / "model.int8.onnx"
                logging.disable(logging.WARNING)  # its advice to pre-process, on the root logger
                try:
                    quantize_dynamic(str(path), str(quantized), weight_type=QuantType.QInt8, per_channel=True)
                finally:
                    logging.disable(logging.NOTSET)
                path = quantized
                self._session = session(path.read_bytes())
            if cached is not None:
                try:
                    cached.parent.mkdir(parents=True, exist_ok=True)
                    write_bytes(cached, path.read_bytes())
                except OSError as exc:  # the cache only saves time: the encoder works without it
                    logger.warning("cannot keep the ONNX export in %s (%s)", cached.parent, exc)

    def __call__(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        feed = {"input_ids": input_ids.numpy(), "attention_mask": attention_mask.numpy()}
        out: Any = self._session.run(None, feed)[0]
        return torch.from_numpy(np.asarray(out))


def _sample(length: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Two rows of token ids, the second padded: a trace with padding keeps the mask in."""
    ids = torch.arange(2 * length, dtype=torch.int64).reshape(2, length) % 97 + 5
    mask = torch.ones_like(ids)
    mask[1, length // 2 :] = 0
    return ids, mask


def _check(model: TokenVectors, session: OnnxModel) -> None:
    """Refuse an export that does not reproduce the torch model (another length than traced)."""
    ids, mask = _sample(13)
    with torch.inference_mode():
        want = model(ids, mask)
    got = session(ids, mask)
    keep = mask.bool()
    if got.shape != want.shape or not torch.allclose(got[keep], want[keep], atol=1e-4, rtol=1e-4):
        name = type(model.transformer).__name__
        msg = f"the ONNX export of {name} does not reproduce its torch outputs; use runtime='torch'"
        raise CheckpointError(msg)


def _export(model: TokenVectors, path: Path) -> None:
    """Trace `model` to ONNX with batch and length left free; a backbone the exporter cannot
    trace is refused by name."""
    sample = _sample(8)
    dynamic = {0: "batch", 1: "length"}
    name = type(model.transformer).__name__
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")  # the exporter's notes on tracing and deprecations
            torch.onnx.export(
                model,
                sample,
                str(path),
                input_names=["input_ids", "attention_mask"],
                output_names=["vectors"],
                dynamic_axes={"input_ids": dynamic, "attention_mask": dynamic, "vectors": dynamic},
                opset_version=17,
                dynamo=False,
            )
    except Exception as exc:  # the exporter raises many types; all mean the same here
        reason = f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
        msg = f"cannot export {name} to ONNX ({reason}); use runtime='torch'"
        raise CheckpointError(msg) from exc
