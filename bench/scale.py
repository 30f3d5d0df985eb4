"""Millions of rows in PostgreSQL, by COPY (run by bench/__main__.py --scale in a subprocess).

    python -m bench.scale seed [--users 100000 --codes 5000000]

Per user: 10 keys and 10 grants; then 5,000,000 authorization codes that
expired a month ago (half of them redeemed), which purge_codes may delete.
Tables and columns come from the models' _meta, and every column this file
does not fill gets its field's default (or NULL, or ""), so a column added
later does not break seeding. Foreign keys are right by construction, so the
COPY skips their triggers (session_replication_role = replica); indexes that
back no constraint are dropped during the COPY and built again after it.
Prints one JSON line: rows and seconds per table.
"""

import argparse
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import django

KEYS_PER_USER = GRANTS_PER_USER = 10


def _defaults(model, filled: list[str], connection) -> list:
    """The value of every column not in `filled`, ready for the database."""
    values = []
    for field in model._meta.concrete_fields:
        if field.attname in filled:
            values.append(None)
        elif field.has_default():
            values.append(field.get_db_prep_save(field.get_default(), connection))
        elif field.null:
            values.append(None)
        elif field.empty_strings_allowed:
            values.append("")
        else:
            raise SystemExit(f"{model._meta.label}.{field.name} has no default: fill it in bench/scale.py")
    return values


def _drop_secondary_indexes(cursor, table: str) -> list[str]:
    """Drop the table's indexes that back no constraint; returns the statements that recreate them.

    Building an index once over the loaded rows (a sort) is much faster than
    inserting millions of rows into it one by one.
    """
    cursor.execute(
        "SELECT i.indexrelid::regclass::text, pg_get_indexdef(i.indexrelid) FROM pg_index i"
        " WHERE i.indrelid = %s::regclass"
        " AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = i.indexrelid)",
        [table],
    )
    found = cursor.fetchall()
    for name, _ in found:
        cursor.execute(f"DROP INDEX {name}")
    return [definition for _, definition in found]


def copy_rows(model, filled: list[str], rows: Iterator[tuple], *, connection) -> int:
    """COPY rows into the model's table; each row gives the `filled` attributes, in that order."""
    fields = model._meta.concrete_fields
    template = _defaults(model, filled, connection)
    slots = [i for i, field in enumerate(fields) if field.attname in filled]
    slots = [slots[[fields[i].attname for i in slots].index(name)] for name in filled]  # in `filled` order
    columns = ", ".join(connection.ops.quote_name(field.column) for field in fields)
    count = 0
    with connection.cursor() as cursor:
        recreate = _drop_secondary_indexes(cursor, model._meta.db_table)
        raw = cursor.cursor  # psycopg's own cursor: Django's wrapper has no copy()
        with raw.copy(f"COPY {connection.ops.quote_name(model._meta.db_table)} ({columns}) FROM STDIN") as copy:
            for values in rows:
                row = list(template)
                for slot, value in zip(slots, values, strict=True):
                    row[slot] = value
                copy.write_row(row)
                count += 1
        for statement in recreate:
            cursor.execute(statement)
    return count


def _hex(label: str, i: int) -> str:
    return hashlib.sha256(f"{label}-{i}".encode()).hexdigest()


def seed(*, users: int, codes: int) -> dict:
    from django.contrib.auth.hashers import make_password
    from django.core.management.color import no_style
    from django.db import connection, transaction
    from django.utils import timezone

    from accounts import keys
    from accounts.models import ApiKey, User
    from oauthprovider.models import AuthorizationCode, Grant

    now = timezone.now()
    password = make_password("scale-" + os.urandom(8).hex())
    # Filler keys are never handed out: one real ciphertext, so rows have the real size.
    ciphertext = keys.encrypt_key(keys.generate_raw_key())
    expired = now - timedelta(days=30)
    clients = [f"client{j}.example.com" for j in range(GRANTS_PER_USER)]
    challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"

    def user_rows() -> Iterator[tuple]:
        for i in range(1, users + 1):
            yield (i, f"scale{i:06d}", password)

    def key_rows() -> Iterator[tuple]:
        for i in range(1, users * KEYS_PER_USER + 1):
            key_hash = _hex("scale-key", i)
            yield (i, (i - 1) // KEYS_PER_USER + 1, f"key {i % 10}", "kg_" + key_hash[:8], key_hash, ciphertext)

    def grant_rows() -> Iterator[tuple]:
        for i in range(1, users * GRANTS_PER_USER + 1):
            user, j = (i - 1) // GRANTS_PER_USER + 1, (i - 1) % GRANTS_PER_USER
            yield (i, user, clients[j], "key:read", i)  # the user's j-th key

    def code_rows() -> Iterator[tuple]:
        for i in range(1, codes + 1):
            grant = (i * 7919) % (users * GRANTS_PER_USER) + 1
            user, client = (grant - 1) // GRANTS_PER_USER + 1, clients[(grant - 1) % GRANTS_PER_USER]
            expires = expired - timedelta(seconds=i)
            redeemed = expires - timedelta(seconds=50) if i % 2 else None
            yield (
                i,
                _hex("scale-code", i),
                user,
                grant,
                grant,
                client,
                f"https://{client}/callback",
                "key:read",
                challenge,
                expires - timedelta(seconds=60),
                expires,
                redeemed,
            )

    plan: list[tuple[type, list[str], Callable[[], Iterator[tuple]]]] = [
        (User, ["id", "username", "password"], user_rows),
        (ApiKey, ["id", "user_id", "name", "prefix", "key_hash", "key_encrypted"], key_rows),
        (Grant, ["id", "user_id", "client_id", "scope", "key_id"], grant_rows),
        (
            AuthorizationCode,
            [
                "id",
                "code_hash",
                "user_id",
                "grant_id",
                "key_id",
                "client_id",
                "redirect_uri",
                "scope",
                "code_challenge",
                "created_at",
                "expires_at",
                "redeemed_at",
            ],
            code_rows,
        ),
    ]
    report = {}
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL statement_timeout = 0")  # a maintenance job, not a serving process
        cursor.execute("SET LOCAL session_replication_role = replica")
        cursor.execute("SET LOCAL synchronous_commit = off")
        cursor.execute("SET LOCAL maintenance_work_mem = '512MB'")  # index builds sort in memory
        for model, filled, rows in plan:
            started = time.perf_counter()
            count = copy_rows(model, filled, rows(), connection=connection)
            report[model._meta.db_table] = {"rows": count, "seconds": round(time.perf_counter() - started, 1)}
        for sql in connection.ops.sequence_reset_sql(no_style(), [model for model, _, _ in plan]):
            cursor.execute(sql)
    return report


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("command", choices=["seed"])
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--codes", type=int, default=5_000_000)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    started = time.perf_counter()
    report = seed(users=args.users, codes=args.codes)
    report["total_seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
