"""Secrets made once and kept in a private file: the embedded servers' passwords, the API token.

A restart reads the same value back, so clients and scripts keep working.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path


def private_secret(path: Path) -> str:
    """The secret in `path` (mode 0600), made on first use; racing processes agree on one."""
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        staged = path.with_name(f".{path.name}.{os.getpid()}")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(24) + "\n")
        try:
            os.link(staged, path)  # the first process's value wins; never half-written
        except FileExistsError:
            pass
        finally:
            staged.unlink()
    return path.read_text().strip()
