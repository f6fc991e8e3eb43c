"""Freed memory handed back to the operating system, so a later peak does not count it again."""

from __future__ import annotations

import ctypes
from collections.abc import Callable

import pyarrow as pa


def _malloc_trim() -> Callable[[int], int] | None:
    """glibc's malloc_trim, or None where the C library has none (musl, macOS)."""
    try:
        return ctypes.CDLL(None).malloc_trim
    except (AttributeError, OSError):
        return None


_TRIM = _malloc_trim()


def release_freed_memory() -> None:
    """pyarrow's allocator (mimalloc) keeps freed buffers for reuse, and glibc's malloc keeps
    the freed chunks of its heaps, one heap per thread that allocated: at 25M ratings each
    holds hundreds of megabytes after a read, a large write or a threaded stage."""
    pa.default_memory_pool().release_unused()
    if _TRIM is not None:
        _TRIM(0)
