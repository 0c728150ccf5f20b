"""What the machine computes natively: the CPU model, its bfloat16 support, its cores.

The fastest precision differs between the machines kerastrans runs on: CPUs
with AVX512-BF16 or AMX-BF16 (Intel Sapphire Rapids and later, AMD Zen 4 and
later) and GPUs of compute capability 8.0 or more compute bfloat16 natively, so
mixed bfloat16 trains about 1.5x faster there; elsewhere bfloat16 is emulated
and slower than float32. `native_bfloat16` tells which case this machine is,
and `read_cpuinfo` names the CPU for benchmark results.

>>> info = CpuInfo(model="Intel Xeon", flags=frozenset({"avx512f", "amx_bf16"}))
>>> info.bfloat16_features
('AMX-BF16',)
"""

from __future__ import annotations

import dataclasses
import functools
import os
import sys
from pathlib import Path

__all__ = [
    "CPUINFO",
    "CpuInfo",
    "gpu_bfloat16",
    "native_bfloat16",
    "read_cpuinfo",
    "usable_cores",
]

#: Where Linux describes the CPU.
CPUINFO = Path("/proc/cpuinfo")

#: CPU flags of native bfloat16 arithmetic, and the names results give them.
_BF16_FLAGS = {"avx512_bf16": "AVX512-BF16", "amx_bf16": "AMX-BF16"}

#: GPUs compute bfloat16 natively from this CUDA compute capability on (Ampere).
_BF16_COMPUTE_CAPABILITY = (8, 0)


@dataclasses.dataclass(frozen=True)
class CpuInfo:
    """The CPU as ``/proc/cpuinfo`` describes it.

    Args:
        model: The ``model name`` field (`None` where the file has none).
        flags: The CPU's feature flags (``avx512_bf16``, ``amx_bf16``, ...).
    """

    model: str | None = None
    flags: frozenset[str] = frozenset()

    @property
    def bfloat16_features(self) -> tuple[str, ...]:
        """The native bfloat16 features of this CPU, e.g. ``("AVX512-BF16", "AMX-BF16")``."""
        return tuple(name for flag, name in _BF16_FLAGS.items() if flag in self.flags)


def read_cpuinfo(path: str | Path = CPUINFO) -> CpuInfo:
    """Read the first processor's model name and flags from ``path``.

    A missing or unreadable file (not Linux, a container hiding it) gives an
    empty `CpuInfo`: no model and no flags, so nothing is claimed native.
    """
    try:
        lines = Path(path).read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return CpuInfo()
    fields: dict[str, str] = {}
    for line in lines:
        key, sep, value = line.partition(":")
        if sep and key.strip() not in fields:  # the first processor's entry
            fields[key.strip()] = value.strip()
    return CpuInfo(fields.get("model name"), frozenset(fields.get("flags", "").split()))


def gpu_bfloat16() -> bool | None:
    """Whether every visible GPU computes bfloat16 natively; `None` without a GPU.

    Asks TensorFlow only where it is already imported, so that calling this
    never costs a TensorFlow start-up.
    """
    tf = sys.modules.get("tensorflow")
    if tf is None:
        return None
    gpus = tf.config.list_physical_devices("GPU")
    if not gpus:
        return None
    capabilities = [
        tf.config.experimental.get_device_details(gpu).get("compute_capability") for gpu in gpus
    ]
    return all(c is not None and tuple(c) >= _BF16_COMPUTE_CAPABILITY for c in capabilities)


@functools.cache
def native_bfloat16(cpuinfo: str | Path = CPUINFO) -> bool:
    """Whether this machine computes bfloat16 natively.

    The GPUs decide when TensorFlow sees any (networks then run there);
    otherwise the CPU's AVX512-BF16 or AMX-BF16 flags.
    """
    gpu = gpu_bfloat16()
    if gpu is not None:
        return gpu
    return bool(read_cpuinfo(cpuinfo).bfloat16_features)


def usable_cores() -> int:
    """Cores this process may run on: its CPU affinity where the OS has one, else all (>= 1)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1
