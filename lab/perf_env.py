"""Process settings that let the array math run at the machine's matmul limit (docs/benchmarks.md).

The ``muonlab`` command calls :func:`configure` before NumPy is first imported; every manifest
records :func:`settings`. This module imports nothing but the standard library.

- ``OPENBLAS_CORETYPE=SkylakeX`` when unset, on AMD CPUs with AVX-512: the NumPy wheel's OpenBLAS
  does not recognize them and picks its AVX2 (Haswell) kernels, about half the fp32 matmul speed.
  It is read when OpenBLAS loads, so it only counts if NumPy is not loaded yet; a value already in
  the environment is kept.
- glibc malloc: keep freed blocks up to 256 MiB in the heap and serve blocks up to 64 MiB from it
  (``mallopt``; the ``MALLOC_MMAP_THRESHOLD_`` / ``MALLOC_TRIM_THRESHOLD_`` variables are only
  read at process start). Otherwise every temporary of 2 MiB or more is returned to the OS when
  freed and page-faulted back on the next step. Skipped when either variable is set.

``MUONLAB_PERF_ENV=0`` turns both off (the benchmark's "before" runs use it).

:func:`settings` (what manifests record) adds, once NumPy is loaded, the CPU facts the levers
are conditioned on (vendor, AVX2 / AVX-512, cores) and the kernel levers that
``runners.orth`` chose from the detected BLAS kernel (:func:`runners.orth.kernel_levers`).
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys

SWITCH = "MUONLAB_PERF_ENV"
CORETYPE = "SkylakeX"
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
MMAP_THRESHOLD = 64 << 20
TRIM_THRESHOLD = 256 << 20
_AVX512 = {"avx512f", "avx512dq", "avx512bw", "avx512vl"}  # what OpenBLAS's SkylakeX kernels use

_SETTINGS: dict | None = None


def cpu() -> dict:
    """Vendor, model name and flags of the first CPU (Linux /proc/cpuinfo; empty elsewhere)."""
    out = {"vendor": "", "model": platform.processor(), "flags": set()}
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                key, _, val = line.partition(":")
                key, val = key.strip(), val.strip()
                if key == "vendor_id":
                    out["vendor"] = val
                elif key == "model name":
                    out["model"] = val
                elif key == "flags":
                    out["flags"] = set(val.split())
                    break
    except OSError:
        pass
    return out


def _coretype(env) -> dict:
    if "OPENBLAS_CORETYPE" in env:
        return {"value": env["OPENBLAS_CORETYPE"], "source": "environment"}
    info = cpu()
    if info["vendor"] != "AuthenticAMD" or not _AVX512 <= info["flags"]:
        return {"value": None, "source": "not needed: OpenBLAS detects this CPU itself"}
    if "numpy" in sys.modules:
        return {"value": None, "source": "not set: NumPy was loaded before muonlab could set it"}
    env["OPENBLAS_CORETYPE"] = CORETYPE
    return {"value": CORETYPE, "source": "set by muonlab (AMD CPU with AVX-512)"}


def _malloc(env) -> dict:
    given = {k: env[k] for k in ("MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_") if k in env}
    if given:
        return {**given, "source": "environment"}
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return {"source": "not set: not glibc"}
    try:
        libc = ctypes.CDLL("libc.so.6")
        ok = libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD) == 1 and libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD) == 1
    except (OSError, AttributeError):
        ok = False
    if not ok:
        return {"source": "not set: mallopt failed"}
    return {"mmap_threshold": MMAP_THRESHOLD, "trim_threshold": TRIM_THRESHOLD, "source": "set by muonlab (mallopt)"}


def configure(env=None) -> dict:
    """Apply the settings once per process (later calls return the first result). ``env``: the
    environment mapping to read and update (default ``os.environ``)."""
    global _SETTINGS
    if _SETTINGS is not None:
        return _SETTINGS
    env = os.environ if env is None else env
    if env.get(SWITCH, "1") == "0":
        _SETTINGS = {
            "enabled": False,
            "openblas_coretype": {
                "value": env.get("OPENBLAS_CORETYPE"),
                "source": "environment" if "OPENBLAS_CORETYPE" in env else "unset",
            },
        }
    else:
        _SETTINGS = {"enabled": True, "openblas_coretype": _coretype(env), "malloc": _malloc(env)}
    return _SETTINGS


def cpu_summary() -> dict:
    """The detected CPU facts every lever is conditioned on."""
    info = cpu()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "vendor": info["vendor"],
        "model": info["model"],
        "avx2": "avx2" in info["flags"],
        "avx512": _AVX512 <= info["flags"],
        "cores": cores,
    }


def settings() -> dict:
    """What :func:`configure` did in this process, for the manifest (it runs now if it has not:
    the malloc settings still apply, the core type is then only reported), with the CPU facts
    and, when NumPy is loaded, the kernel levers in effect."""
    out = {**configure(), "cpu": cpu_summary()}
    if "numpy" in sys.modules:
        from runners.orth import kernel_levers  # noqa: PLC0415  (lab -> runners; NumPy is loaded)

        out["kernels"] = kernel_levers()
    return out
