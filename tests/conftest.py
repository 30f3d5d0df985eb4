"""Shared fixtures: people (alice, bob, mallory), PKCE pairs, and a flow driver."""

import importlib
import re
import secrets
import time
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.core.cache import cache
from django.core.management import call_command
from django.db import connection, connections
from django.db.utils import load_backend
from django.test import Client

from accounts import signin
from accounts.audit import SYSTEM
from accounts.models import ApiKey, User
from accounts.services import key_create
from oauthprovider.protocol import s256_challenge


def _flush_around_the_audit_guard() -> None:
    """Let the test runner empty tables between transactional tests on SQLite.

    Its flush is a DELETE per table, which the audit log's append-only
    trigger refuses (accounts migration 0007), as it should in service. For
    the flush only, the trigger is dropped and created again in the same
    transaction; nothing else in the tests can delete an event.
    """
    from django.db.backends.sqlite3.base import DatabaseOperations

    guard = importlib.import_module("accounts.migrations.0007_auditevent_no_delete_on_sqlite")
    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, **kwargs):
        statements = original(self, style, tables, **kwargs)
        if "accounts_auditevent" not in tables:
            return statements
        return [guard.SQLITE_DROP, *statements, guard.SQLITE_CREATE]

    DatabaseOperations.sql_flush = sql_flush


_flush_around_the_audit_guard()

CLIENT_ID = "yourapp.com"
REDIRECT_URI = "https://yourapp.com/callback"


@pytest.fixture(autouse=True)
def _fast_and_clean(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    cache.clear()
    yield
    cache.clear()


def make_user(username: str) -> User:
    return User.objects.create_user(username=username, password=f"{username}-password", email=f"{username}@example.com")


@pytest.fixture
def alice(db) -> User:
    return make_user("alice")


@pytest.fixture
def bob(db) -> User:
    return make_user("bob")


@pytest.fixture
def mallory(db) -> User:
    return make_user("mallory")


def force_login_with_second_factor(client: Client, user: User) -> Client:
    """force_login, with the session marked as signed in with a second factor just now.

    Staff must have a second factor by default (TWO_FACTOR_REQUIRED=staff):
    a session signed in without one is treated as signed out
    (accounts.signin.SecondFactorRequiredMiddleware).
    """
    client.force_login(user)
    session = client.session
    session[signin.SECOND_FACTOR] = "totp"
    session[signin.CHECKED_AT] = time.time()
    session.save()
    return client


@pytest.fixture
def admin_client(admin_user) -> Client:
    """pytest-django's admin_client, signed in the way staff must be (with a second factor)."""
    return force_login_with_second_factor(Client(), admin_user)


@pytest.fixture
def alice_client(alice) -> Client:
    client = Client()
    client.force_login(alice)
    return client


@pytest.fixture
def alice_key(alice) -> tuple[ApiKey, str]:
    return key_create(user=alice, name="laptop", context=SYSTEM)


@dataclass
class PkcePair:
    verifier: str
    challenge: str


def new_pkce_pair() -> PkcePair:
    verifier = secrets.token_urlsafe(48)[:64]
    return PkcePair(verifier=verifier, challenge=s256_challenge(verifier))


@pytest.fixture
def pkce_pair() -> PkcePair:
    return new_pkce_pair()


def authorize_params(pkce: PkcePair, **overrides) -> dict[str, str]:
    params = {
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "response_type": "code",
        "scope": "key:read",
        "code_challenge": pkce.challenge,
        "code_challenge_method": "S256",
        "state": "random-state-value",
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def authorize_url(params: dict[str, str]) -> str:
    return "/getKeys/authorize?" + urlencode(params, doseq=True)


def consent_request_id(response) -> str:
    match = re.search(rb'name="request" value="([^"]+)"', response.content)
    assert match, "the consent page carries an opaque request id"
    return match.group(1).decode()


def csrf_token_of(response) -> str:
    match = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', response.content)
    assert match, "the page carries a CSRF token in its form"
    return match.group(1).decode()


def query_of(location: str) -> dict[str, list[str]]:
    return parse_qs(urlsplit(location).query)


def approve(client: Client, params: dict[str, str], *, key: str = "new") -> str:
    """Walk authorize -> consent -> Allow; returns the redirect Location."""
    page = client.get(authorize_url(params))
    assert page.status_code == 200, page.content[:500]
    response = client.post("/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": key})
    assert response.status_code == 302
    return response["Location"]


def issue_code(client: Client, pkce: PkcePair, **overrides) -> str:
    key = overrides.pop("key", "new")
    location = approve(client, authorize_params(pkce, **overrides), key=key)
    return query_of(location)["code"][0]


def form_post(client: Client, path: str, **data):
    """A form-encoded POST, as OAuth clients send them (a list value repeats the parameter)."""
    return client.post(path, urlencode(data, doseq=True), content_type="application/x-www-form-urlencoded")


def token_request(client: Client, **data):
    return form_post(client, "/getKeys/token", **data)


def exchange(client: Client, code: str, pkce: PkcePair, **overrides):
    data = {
        "grant_type": "authorization_code",
        "code": code,
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce.verifier,
    }
    data.update(overrides)
    return token_request(client, **{k: v for k, v in data.items() if v is not None})


@pytest.fixture(params=["cache", "database"])
def counter_store(request, settings) -> str:
    """Run a rate-limit test with each counter store (accounts/counters.py)."""
    settings.RATE_LIMIT_STORE = request.param
    return request.param


@pytest.fixture
def shared_database(transactional_db, tmp_path):
    """A database that threads really share: the test database, or a SQLite file.

    On PostgreSQL, threads use the test database. On SQLite, pytest-django's
    test database is a shared-cache in-memory database, whose table locks
    fail at once ("database table is locked") instead of waiting, so the
    test moves to a migrated SQLite *file* for its duration: the same set-up
    production uses (WAL, IMMEDIATE transactions, a busy timeout).
    """
    if connection.vendor != "sqlite":
        yield
        return
    original_settings = connections.settings["default"]
    original_connection = connections["default"]
    file_settings = {**original_settings, "NAME": str(tmp_path / "shared.sqlite3")}
    connections.settings["default"] = file_settings  # what new threads connect to
    connections["default"] = load_backend(file_settings["ENGINE"]).DatabaseWrapper(file_settings, "default")
    try:
        call_command("migrate", verbosity=0, interactive=False)
        yield
    finally:
        connections["default"].close()
        connections.settings["default"] = original_settings
        connections["default"] = original_connection


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def clock(monkeypatch, settings) -> Clock:
    """Moves time.time() by hand: the throttle and the local-memory cache both read it.

    A shared cache (CI runs with Redis) expires keys on its own clock, so
    tests that travel in time use a local-memory cache.
    """
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    fake = Clock()
    monkeypatch.setattr(time, "time", lambda: fake.now)
    return fake
