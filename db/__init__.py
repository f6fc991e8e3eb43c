"""PostgreSQL, the system of record: schema, import, consistent snapshots and live writes.

Beside `cache/` in the layers: it imports only `pipeline`. The write path (`db.writes`,
`db.database`) imports psycopg alone, so the web app stays light; the snapshot and the import
(`db.snapshot`, `db.importer`) bring pandas and pyarrow and run in workers and the CLI.
"""
