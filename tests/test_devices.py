"""Scoring's float type by what the CPU does natively (the policy, forced by monkeypatching
the hardware checks)."""

from __future__ import annotations

import pytest
import torch

import colbert_retriever.devices as devices


@pytest.mark.parametrize("fast", [True, False])
def test_auto_scores_in_float16_only_where_half_math_is_fast(monkeypatch: pytest.MonkeyPatch, fast: bool) -> None:
    monkeypatch.setattr(devices, "half_matmul_is_fast", lambda: fast)
    assert devices.scoring_dtype("auto") == (torch.float16 if fast else torch.float32)
    assert devices.scoring_dtype("float16") == torch.float16
    assert devices.scoring_dtype("float32") == torch.float32


def test_below_avx512_half_math_counts_as_emulated_without_timing(monkeypatch: pytest.MonkeyPatch) -> None:
    devices.half_matmul_is_fast.cache_clear()
    monkeypatch.setattr(torch.backends.cpu, "get_cpu_capability", lambda: "AVX2")

    def no_timing(*args: object, **kwargs: object) -> None:
        msg = "timed a matmul below AVX-512"
        raise AssertionError(msg)

    monkeypatch.setattr(torch, "randn", no_timing)
    try:
        assert devices.half_matmul_is_fast() is False
        assert devices.scoring_dtype("auto") == torch.float32
    finally:
        devices.half_matmul_is_fast.cache_clear()
