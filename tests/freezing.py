"""Freezing servers as a stop-the-world pause or a silent network would: SIGSTOP keeps their
sockets open and the kernel accepting, while nothing answers."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from tests.test_e2e_up import process_tree


@contextmanager
def frozen(*roots: int) -> Iterator[list[int]]:
    """Every process of the trees under `roots` stopped for the block, resumed after it."""
    pids = [pid for root in roots for pid in (root, *process_tree(root))]
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        yield pids
    finally:
        for pid in pids:
            with suppress(ProcessLookupError):
                os.kill(pid, signal.SIGCONT)
