"""Mixed precision for the networks' matrix products: bfloat16 where the hardware multiplies it natively.

On CPUs with AMX or AVX512-BF16 (recent Xeons) and on recent GPUs, a bfloat16 matrix product runs
several times faster than a float32 one (measured on this project's 2-core Xeon: 4.7x for the
networks' [16384, 128] x [128, 64] product). Under :func:`autocast` the linear layers compute in
bfloat16 while weights, optimiser state, log-probabilities, losses and everything read from a
checkpoint stay float32. Elsewhere bfloat16 is emulated and slower, so ``auto`` uses it only where
it is native.
"""

from __future__ import annotations

import contextlib
from functools import lru_cache
from typing import ContextManager

import torch

from gdmpo.threads import cpuinfo_field

PRECISIONS = ("float32", "bfloat16", "auto")


@lru_cache(maxsize=None)
def native_bfloat16(device_type: str = "cpu") -> bool:
    """Whether ``device_type`` multiplies bfloat16 matrices in hardware (CPU: AMX or AVX512-BF16 flags)."""
    if device_type == "cuda":
        return torch.cuda.is_available() and torch.cuda.is_bf16_supported()
    if device_type != "cpu":
        return False
    flags = cpuinfo_field("flags").split()
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve(precision: str, device: torch.device | str = "cpu") -> torch.dtype | None:
    """The autocast dtype a ``precision`` setting means on ``device`` (None: plain float32)."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    device_type = torch.device(device).type
    if precision == "bfloat16" or (precision == "auto" and native_bfloat16(device_type)):
        return torch.bfloat16
    return None


def autocast(dtype: torch.dtype | None, device: torch.device | str = "cpu") -> ContextManager:
    """Matrix products in ``dtype`` inside the block (nothing changes for None)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(torch.device(device).type, dtype=dtype)
