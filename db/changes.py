"""Which users' cached lists are behind the database, from the `user_changes` stamps."""

from __future__ import annotations

import psycopg


def changed_users_sql(snapshot: str) -> str:
    """Users with a change the snapshot (the placeholder `snapshot`) did not see: committed
    after it, or in flight."""
    return (
        "SELECT user_id FROM user_changes"
        f" WHERE NOT pg_visible_in_snapshot(changed_xid, {snapshot}::pg_snapshot) ORDER BY user_id"
    )


def changed_after(conn: psycopg.Connection, pg_snapshot: str) -> list[int]:
    rows = conn.execute(changed_users_sql("%s"), (pg_snapshot,)).fetchall()
    return [int(row[0]) for row in rows]


def settle(conn: psycopg.Connection, pg_snapshot: str) -> int:
    """A version trained on the snapshot went live: the changes it saw need no live refresh."""
    with conn.transaction():
        return conn.execute(
            "UPDATE user_changes SET refreshed_xid = changed_xid"
            " WHERE refreshed_xid IS DISTINCT FROM changed_xid"
            " AND pg_visible_in_snapshot(changed_xid, %s::pg_snapshot)",
            (pg_snapshot,),
        ).rowcount


def pending(conn: psycopg.Connection, older_than_seconds: float, limit: int) -> list[int]:
    """Users whose latest change no refresh has applied yet, changed at least that long ago
    (younger changes have their own refresh on the way)."""
    rows = conn.execute(
        "SELECT user_id FROM user_changes WHERE refreshed_xid IS DISTINCT FROM changed_xid"
        " AND changed_at < now() - make_interval(secs => %s) ORDER BY changed_at LIMIT %s",
        (older_than_seconds, limit),
    ).fetchall()
    return [int(row[0]) for row in rows]


def mark_refreshed(conn: psycopg.Connection, user_id: int, change: int) -> None:
    """A refresh applied the user's ratings as of `change` (a later change stays pending)."""
    with conn.transaction():
        conn.execute(
            "UPDATE user_changes SET refreshed_xid = %s::text::xid8"
            " WHERE user_id = %s AND changed_xid = %s::text::xid8",
            (change, user_id, change),
        )
