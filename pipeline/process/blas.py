"""Limiting BLAS threads around a block, where threads of our own share the cores, or every
native thread pool (BLAS and scikit-learn's OpenMP loops) where the work is too small to share.

threadpoolctl finds the loaded BLAS libraries by reading the process's memory map, which costs
milliseconds: one controller is made on first use and kept, so a live refresh of one user does
not pay that every time.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import cache

from threadpoolctl import ThreadpoolController


@cache
def _controller() -> ThreadpoolController:
    return ThreadpoolController()


def blas_threads(limit: int) -> AbstractContextManager:
    return _controller().limit(limits=limit, user_api="blas")


def native_threads(limit: int | None) -> AbstractContextManager:
    """BLAS and OpenMP both; None leaves them as they are."""
    return _controller().limit(limits=limit)
