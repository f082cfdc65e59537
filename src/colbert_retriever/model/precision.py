"""Which float types this CPU computes fast, decided at run time.

Half-precision math is native only on some CPUs: with AVX-512 BF16 or AMX, bfloat16 encoding
is ~3x faster than float32; on AVX2-only CPUs both float16 and bfloat16 are emulated, 5-20x
slower than float32. Vectors stay float16 on disk either way; what changes is the type each
block is converted to before a matmul, and whether the encoder runs under bfloat16 autocast.
"""

from __future__ import annotations

from typing import Literal

import torch

from colbert_retriever.config import Precision


def native_bfloat16() -> bool:
    """Whether this CPU has bfloat16 units (AVX-512 BF16 or AMX), by torch's run-time checks."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(bool(getattr(torch.cpu, name, lambda: False)()) for name in checks)


def encoding_precision(
    setting: Precision = "auto", device: torch.device | None = None
) -> Literal["float32", "bfloat16"]:
    """bfloat16 autocast where the CPU has bfloat16 units or the GPU supports it ("auto"),
    float32 elsewhere (and always with "float32", which reproduces colbert-ai and PyLate exactly)."""
    if setting != "auto":
        return setting
    if device is not None and device.type == "cuda":
        return "bfloat16" if torch.cuda.is_bf16_supported() else "float32"
    return "bfloat16" if native_bfloat16() else "float32"
