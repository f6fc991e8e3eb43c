"""Erasing a user: their ratings, tags and change stamps go, a tombstone of the id stays.

One transaction: a user is erased whole or not at all. The tombstone answers a retry ("already
erased"), refuses later writes to the id, and keeps the user out of the next snapshot even
when the snapshot reuses an earlier version's ratings.
"""

from __future__ import annotations

from enum import Enum

import psycopg

from db.database import Database
from pipeline.errors import MovierecError

ERASED_IDS_QUERY = "SELECT user_id FROM erased_users ORDER BY user_id"
ERASURE_LOCK = 0x6572  # "er": the advisory lock space of erasures and the writes they exclude


class Erasure(Enum):
    ERASED = "erased"  # now
    ALREADY = "already erased"
    UNKNOWN = "never existed"


class UserErased(MovierecError):
    """The user id was erased: nothing may be stored under it again."""


def erase_user(conn: psycopg.Connection, user_id: int) -> Erasure:
    with conn.transaction():
        lock_user(conn, user_id)
        if is_erased(conn, user_id):
            return Erasure.ALREADY
        removed = 0
        for table in ("ratings", "tags", "user_changes"):
            removed += conn.execute(f"DELETE FROM {table} WHERE user_id = %s", (user_id,)).rowcount
        if not removed:
            return Erasure.UNKNOWN
        conn.execute("INSERT INTO erased_users (user_id) VALUES (%s)", (user_id,))
    return Erasure.ERASED


def is_erased(conn: psycopg.Connection, user_id: int) -> bool:
    found = conn.execute("SELECT 1 FROM erased_users WHERE user_id = %s", (user_id,)).fetchone()
    return found is not None


def refuse_if_erased(conn: psycopg.Connection, user_id: int) -> None:
    """Inside a write's transaction: UserErased for an erased id. The share lock on the
    tombstone's key makes an erasure committing meanwhile wait for this write, or this write
    see its tombstone: never a rating stored after its user was erased."""
    conn.execute("SELECT pg_advisory_xact_lock_shared(%s, %s)", (ERASURE_LOCK, user_id % 2**31))
    if is_erased(conn, user_id):
        raise UserErased(f"user {user_id} was erased: nothing can be stored under this id")


def lock_user(conn: psycopg.Connection, user_id: int) -> None:
    """The erasure's side of `refuse_if_erased`: wait for writes to the user in flight."""
    conn.execute("SELECT pg_advisory_xact_lock(%s, %s)", (ERASURE_LOCK, user_id % 2**31))


def erased_ids(db: Database | None) -> list[int]:
    """Every erased user id (one row per erasure ever: few); none without a database. For a
    publish: a version may predate an erasure."""
    if db is None:
        return []
    with db.connection() as conn:
        return [int(row[0]) for row in conn.execute(ERASED_IDS_QUERY)]
