"""Where scoring and encoding run, and in which float type stored vectors are scored.

Half-precision math is native only on some CPUs: on AVX2-only CPUs float16 is emulated,
5-20x slower than float32. Vectors stay float16 on disk either way; what changes is the type
each block is converted to before a matmul. Shared by the stores (scoring) and the encoder
(its device), so neither reaches into the other.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable

import torch

from colbert_retriever.config import ScoringDtype
from colbert_retriever.errors import ConfigError


@functools.cache
def half_matmul_is_fast() -> bool:
    """Whether scoring float16 vectors in float16 is clearly faster here than converting them
    to float32 first. Below AVX-512 no x86 CPU has float16 arithmetic, so there it is False
    without measuring; elsewhere a one-off timing of a small matmul decides, and float16 must
    win by 25%: wrongly choosing float32 costs a conversion, wrongly choosing float16 on a
    CPU that emulates it costs 5-20x."""
    if torch.backends.cpu.get_cpu_capability() in ("DEFAULT", "AVX2", "NO AVX"):
        return False
    generator = torch.Generator().manual_seed(0)
    queries = torch.randn(64, 128, generator=generator)
    block = torch.randn(8192, 128, generator=generator).half()
    queries16 = queries.half()

    def best_of_5(step: Callable[[], object]) -> float:
        times = []
        for _ in range(5):
            start = time.perf_counter()
            step()
            times.append(time.perf_counter() - start)
        return min(times)

    half = best_of_5(lambda: queries16 @ block.T)
    single = best_of_5(lambda: queries @ block.float().T)
    return 1.25 * half < single


def scoring_dtype(setting: ScoringDtype = "auto", device: torch.device | None = None) -> torch.dtype:
    """The type float16 document vectors are scored in: float16 on a GPU or where that is
    fast on this CPU, float32 where half math is emulated ("auto"), or as forced."""
    if setting == "float16":
        return torch.float16
    if setting == "float32":
        return torch.float32
    on_gpu = device is not None and device.type == "cuda"
    return torch.float16 if on_gpu or half_matmul_is_fast() else torch.float32


def resolve_device(setting: str = "auto") -> torch.device:
    """The torch device a setting names: "auto" is the first CUDA GPU if torch sees one,
    else the CPU; asking for CUDA where there is none is a `ConfigError`."""
    if setting == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if setting.startswith("cuda") and not torch.cuda.is_available():
        msg = f"device={setting!r}, but torch sees no CUDA GPU (a CPU-only torch build, or no driver); use 'cpu'"
        raise ConfigError(msg)
    return torch.device(setting)
