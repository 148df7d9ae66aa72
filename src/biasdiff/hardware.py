"""What this machine's CPU can do, read without torch (the workflow asks while it builds the DAG).

bf16 matmul units: Intel AMX (`amx_bf16`) and AVX-512 BF16 (`avx512_bf16`, Intel Cooper Lake and later, AMD Zen 4 and
later) are read from the `flags` line of /proc/cpuinfo (Linux). Elsewhere (macOS, Windows) nothing is reported, and
`precision: auto` means fp32 on the CPU there.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

BF16_FLAGS = ("amx_bf16", "avx512_bf16")
CPUINFO = Path("/proc/cpuinfo")


@functools.lru_cache(maxsize=None)
def cpu_bf16_flags(cpuinfo: str | os.PathLike = CPUINFO) -> tuple[str, ...]:
    """The bf16 flags of `BF16_FLAGS` the CPU reports (empty when none, or when `cpuinfo` cannot be read)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return ()
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() == "flags":
            flags.update(value.split())
            break
    return tuple(flag for flag in BF16_FLAGS if flag in flags)


def bf16_unavailable(key: str) -> str:
    """The one-line error for `<key>: bf16` on a CPU without bf16 units."""
    return (f"config key {key}: bf16 needs a CPU with bf16 units ({' or '.join(BF16_FLAGS)} in /proc/cpuinfo) and "
            "this one has none; valid here: auto (= fp32), fp32")


def cuda_present() -> bool:
    """Whether an NVIDIA driver is loaded (what `device: auto` will most likely pick), without importing torch."""
    return Path("/proc/driver/nvidia/version").exists()
