"""Versioned schema: numbered SQL files applied in order, once, by whichever process starts first.

The files run in one transaction under an advisory lock, so processes starting together apply
each migration exactly once, and a process killed mid-way leaves neither half a schema nor a
stale lock (PostgreSQL drops both with the connection).
"""

from __future__ import annotations

from pathlib import Path

import psycopg

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
LOCK_KEY = 0x6D6F76696572  # "movier": one advisory lock id for schema changes


def migration_files() -> list[tuple[int, Path]]:
    """(number, file) in order; a file is named NNNN_what.sql."""
    found = [(int(path.name.split("_", 1)[0]), path) for path in MIGRATIONS.glob("*.sql")]
    return sorted(found)


def migrate(conn: psycopg.Connection) -> list[int]:
    """Apply what is missing; returns the numbers applied now."""
    applied_now = []
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (LOCK_KEY,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {row[0] for row in conn.execute("SELECT version FROM schema_migrations")}
        for number, path in migration_files():
            if number in done:
                continue
            conn.execute(path.read_text())
            conn.execute(
                "INSERT INTO schema_migrations (version, name) VALUES (%s, %s)",
                (number, path.stem),
            )
            applied_now.append(number)
    return applied_now
