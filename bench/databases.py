"""Temporary databases: a SQLite file, or `keygrant_bench_<pid>` on the local PostgreSQL, always dropped."""

import contextlib
import os
import sqlite3
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.server import SetupError


@dataclass
class Database:
    kind: str  # "sqlite" or "postgres"
    url: str
    version: str


@contextlib.contextmanager
def sqlite_database() -> Iterator[Database]:
    with tempfile.TemporaryDirectory(prefix="keygrant-bench-sqlite-") as tmp:
        yield Database("sqlite", f"sqlite:///{Path(tmp) / 'keygrant.sqlite3'}", f"SQLite {sqlite3.sqlite_version}")


@contextlib.contextmanager
def postgres_database(server_url: str) -> Iterator[Database]:
    server_url = server_url.rstrip("/")
    name = f"keygrant_bench_{os.getpid()}"
    try:
        admin = psycopg.connect(f"{server_url}/postgres", autocommit=True)
    except psycopg.OperationalError as exc:
        raise SetupError(f"PostgreSQL at {server_url} is not reachable: {exc}") from exc
    with admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
        version = admin.execute("SHOW server_version").fetchone()[0]
        try:
            yield Database("postgres", f"{server_url}/{name}", f"PostgreSQL {version}")
        finally:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
