"""Registers the load run's OIDC issuer with a `rolegate dev` database.

    register_oidc.py DB_PATH ISSUER_URL AUDIENCE ROLE_NAME

Rolegate has no admin API for IAM OIDC providers yet, so this writes the two rows
directly into the dev SQLite database (the server reads both per request, nothing is
cached): an OIDC provider for ISSUER_URL with client id AUDIENCE in the demo account,
and a role ROLE_NAME whose trust policy lets tokens of that provider with that
audience assume it. Timestamps and the account are copied from the seeded
`DemoWorkload` role, so the rows look like the store's own.
"""

import json
import secrets
import sqlite3
import sys

ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def unique_id(prefix: str) -> str:
    return prefix + "".join(secrets.choice(ALPHABET) for _ in range(17))


def main() -> None:
    db_path, issuer, audience, role_name = sys.argv[1:5]
    provider_url = issuer.removeprefix("https://").removeprefix("http://").rstrip("/")
    db = sqlite3.connect(db_path, timeout=10)
    row = db.execute(
        "SELECT account_id, path, created_at FROM roles WHERE name = 'DemoWorkload'"
    ).fetchone()
    if row is None:
        sys.exit("register_oidc: the seeded DemoWorkload role is missing")
    account, path, created_at = row
    provider_arn = f"arn:aws:iam::{account}:oidc-provider/{provider_url}"
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "TrustLoadIssuer",
                "Effect": "Allow",
                "Principal": {"Federated": provider_arn},
                "Action": "sts:AssumeRoleWithWebIdentity",
                "Condition": {"StringEquals": {f"{provider_url}:aud": audience}},
            }
        ],
    }
    with db:
        db.execute(
            "INSERT INTO oidc_providers (id, account_id, url, client_ids, created_at) "
            "VALUES (?, ?, ?, ?, ?)",
            (unique_id("AOPA"), account, provider_url, json.dumps([audience]), created_at),
        )
        db.execute(
            "INSERT INTO roles (id, account_id, path, name, description, trust_policy, "
            "max_session_duration, tags, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, '[]', ?)",
            (
                unique_id("AROA"),
                account,
                path,
                role_name,
                "Load test: assumed with web identity tokens.",
                json.dumps(trust),
                3600,
                created_at,
            ),
        )
    print(f"registered {provider_arn} and role {role_name}")


if __name__ == "__main__":
    main()
