"""Which number types this CPU encodes fast, decided at run time, and the int8 model.

Half-precision math is native only on some CPUs: with AVX-512 BF16 or AMX, bfloat16 encoding
is ~3x faster than float32; on AVX2-only CPUs both float16 and bfloat16 are emulated, 5-20x
slower than float32. int8 (torch's dynamic quantisation of every linear layer: weights stored
in int8, activations quantised per batch) runs on any x86 CPU. Vectors stay float16 on disk
either way; what changes is the arithmetic of the encoder.
"""

from __future__ import annotations

import warnings
from typing import Literal

import torch

from colbert_retriever.config import Precision
from colbert_retriever.errors import ConfigError

Resolved = Literal["float32", "bfloat16", "int8"]


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 units (AVX-512 BF16 or AMX), by torch's run-time checks."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def encoding_precision(
    setting: Precision = "auto", device: torch.device | None = None, runtime: str = "torch"
) -> Resolved:
    """What "auto" means here: the fastest precision whose nDCG@10 stays within 0.003 of
    float32 on each shared collection (benchmarks/encoding.py; README "Encoding speed").

    torch: bfloat16 where the CPU has bfloat16 units or the GPU supports it, float32
    elsewhere (torch's int8 lost 0.011 on medline). ONNX Runtime: int8 (within the bound on
    all three, 2.3-2.4x float32). "float32" always reproduces colbert-ai and PyLate exactly;
    "int8" runs on a CPU only."""
    on_cpu = device is None or device.type == "cpu"
    if (setting == "int8" or runtime == "onnxruntime") and not on_cpu:
        what = "runtime 'onnxruntime'" if runtime == "onnxruntime" else "precision 'int8' (dynamic quantisation)"
        msg = f"{what} runs on a CPU only, not on {device}; use 'auto' or 'bfloat16'"
        raise ConfigError(msg)
    if setting != "auto":
        return setting
    if runtime == "onnxruntime":
        return "int8"
    if device is not None and device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if native_bfloat16() else "float32"


def quantize(module: torch.nn.Module) -> None:
    """Make every linear layer in `module` compute in int8, in place: torch's dynamic
    quantisation, weights per output channel (once), activations per batch. Attention,
    embeddings and normalisation stay float32. Per-channel weights halve the quality cost of
    per-tensor ones (medline nDCG@10 -0.011 against -0.024) at the same speed."""
    from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates the quantised tensor API it is built on
        quantize_dynamic(module, {torch.nn.Linear: per_channel_dynamic_qconfig}, dtype=torch.qint8, inplace=True)
