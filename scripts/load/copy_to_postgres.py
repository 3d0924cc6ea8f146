"""Prints SQL that copies a seeded `rolegate dev` SQLite database into PostgreSQL.

    copy_to_postgres.py DB_PATH | psql -v ON_ERROR_STOP=1 ...

`rolegate serve` seeds nothing, so the PostgreSQL load run serves the very rows
`rolegate dev` seeded (demo account, roles, policies, directory, the demo IAM user's
sealed keys, session-token keys) and the load run's OIDC provider: every table but
the migrations' own bookkeeping and the audit log, into a database that
`rolegate migrate` has just created (the two migration trees define the same
schema). Values go as string literals, which PostgreSQL parses with each column's
own type (TIMESTAMPTZ, BOOLEAN from 0/1, JSONB); foreign keys are not checked
while copying (session_replication_role, so table order does not matter).
"""

import sqlite3
import sys

SKIPPED = {"_sqlx_migrations", "audit_events", "iam_generation", "sqlite_sequence"}


def literal(value) -> str:
    if value is None:
        return "NULL"
    return "'" + str(value).replace("'", "''") + "'"


def main() -> None:
    db = sqlite3.connect(f"file:{sys.argv[1]}?mode=ro", uri=True)
    tables = [
        name
        for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        if name not in SKIPPED
    ]
    out = sys.stdout
    out.write("SET standard_conforming_strings = on;\nBEGIN;\n")
    out.write("SET LOCAL session_replication_role = replica;\n")
    for table in tables:
        columns = [row[1] for row in db.execute(f'PRAGMA table_info("{table}")')]
        names = ", ".join(f'"{c}"' for c in columns)
        for row in db.execute(f'SELECT {names} FROM "{table}"'):
            values = ", ".join(literal(v) for v in row)
            out.write(f'INSERT INTO "{table}" ({names}) VALUES ({values});\n')
    out.write("COMMIT;\n")
    print(f"copy_to_postgres: {len(tables)} tables", file=sys.stderr)


if __name__ == "__main__":
    main()
