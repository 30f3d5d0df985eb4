"""Concurrent redemption of one code: exactly one request wins (DESIGN.md "Authorization codes").

Real threads, each with its own database connection, released together by a
barrier. On PostgreSQL they run against the test database. On SQLite,
pytest-django's test database is a shared-cache in-memory database, whose
table locks fail at once ("database table is locked") instead of waiting, so
the tests move to a migrated SQLite *file* for their duration: the same
set-up production uses (WAL, IMMEDIATE transactions, a busy timeout).
"""

import threading
from urllib.parse import urlencode

from django.db import connections
from django.test import Client

from accounts.models import AuditEvent
from oauthprovider.models import AuthorizationCode
from tests.conftest import CLIENT_ID, REDIRECT_URI, issue_code

# shared_database (tests/conftest.py): every thread really shares the database.

THREADS = 8


def redeem_concurrently(code: str, verifier: str, *, threads: int = THREADS) -> list:
    barrier = threading.Barrier(threads)
    results: list = [None] * threads
    body = urlencode(
        {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "code_verifier": verifier,
        }
    )

    def worker(index: int) -> None:
        try:
            barrier.wait(timeout=30)
            response = Client().post("/getKeys/token", body, content_type="application/x-www-form-urlencoded")
            results[index] = (response.status_code, response.json())
        except BaseException as exc:  # noqa: BLE001 - reported by the assertion below
            results[index] = exc
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    return results


def test_exactly_one_of_many_concurrent_redemptions_wins(shared_database, alice_client, pkce_pair, settings):
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 1000  # the losers must not trip the address throttle
    code = issue_code(alice_client, pkce_pair)

    results = redeem_concurrently(code, pkce_pair.verifier)

    errors = [r for r in results if not isinstance(r, tuple)]
    assert errors == [], errors
    statuses = sorted(status for status, _ in results)
    assert statuses == [200] + [400] * (THREADS - 1), results
    assert all(body["error"] == "invalid_grant" for status, body in results if status == 400)
    winners = [body for status, body in results if status == 200]
    assert winners[0]["access_token"].startswith("kg_")
    assert AuthorizationCode.objects.get().redeemed_at is not None
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_ISSUED).count() == 1


def test_concurrent_redemptions_with_a_wrong_verifier_all_fail_and_leave_the_code_usable(
    shared_database, alice_client, pkce_pair, settings
):
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 1000
    code = issue_code(alice_client, pkce_pair)

    results = redeem_concurrently(code, "w" * 43)

    assert all(isinstance(r, tuple) and r[0] == 400 for r in results), results
    assert AuthorizationCode.objects.get().redeemed_at is None
    assert redeem_concurrently(code, pkce_pair.verifier, threads=1)[0][0] == 200


def test_threads_see_the_same_database(shared_database, alice):
    """Guard: if each thread had a private database, the tests above would prove nothing."""
    seen = []

    def look() -> None:
        try:
            from accounts.models import User

            seen.append(User.objects.filter(username="alice").exists())
        finally:
            connections.close_all()

    thread = threading.Thread(target=look)
    thread.start()
    thread.join(timeout=30)
    assert seen == [True]
