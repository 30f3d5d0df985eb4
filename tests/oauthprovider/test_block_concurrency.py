"""The kill switch under concurrent consent: no grant slips between a block and its sweep.

A consent that commits while an operator blocks its app is either refused
(it saw the block) or revoked by the sweep (the block waited for it), never
left active. Real threads on a shared database (see test_concurrency.py):
PostgreSQL orders them with an advisory lock, SQLite by running one write
transaction at a time.
"""

import threading
import time

import pytest
from django.db import connections
from django.test import Client

from accounts.audit import SYSTEM
from accounts.models import ApiKey, User
from oauthprovider import services
from oauthprovider.blocks import client_block, client_block_sweep
from oauthprovider.models import ClientBlock, Grant
from tests.conftest import authorize_params, authorize_url, consent_request_id, make_user, new_pkce_pair

# Threads on a database they really share.
pytestmark = pytest.mark.usefixtures("shared_database")

PEOPLE = 6
ROUNDS = 3


def open_consent_page(user: User) -> tuple[Client, str]:
    client = Client()
    client.force_login(user)
    page = client.get(authorize_url(authorize_params(new_pkce_pair())))
    assert page.status_code == 200
    return client, consent_request_id(page)


def run(target, results: list, index: int, *args) -> threading.Thread:
    def work() -> None:
        try:
            results[index] = target(*args)
        except BaseException as exc:  # noqa: BLE001 - reported by the assertions
            results[index] = exc
        finally:
            connections.close_all()

    thread = threading.Thread(target=work)
    thread.start()
    return thread


def block_and_sweep(operator: User, barrier: threading.Barrier | None = None) -> ClientBlock:
    if barrier is not None:
        barrier.wait(timeout=30)
    block = client_block(kind="host", pattern="yourapp.com", reason="Malicious.", actor=operator, context=SYSTEM)
    client_block_sweep(block=block)
    return block


def allow(client: Client, rid: str, barrier: threading.Barrier | None = None) -> int:
    if barrier is not None:
        barrier.wait(timeout=30)
    return client.post("/getKeys/authorize", {"request": rid, "decision": "allow", "key": "new"}).status_code


def assert_nothing_slipped_through() -> None:
    assert not Grant.objects.filter(client_id="yourapp.com", revoked_at__isnull=True).exists()
    assert not ApiKey.objects.active().filter(created_for_client="yourapp.com").exists()


def test_consents_racing_a_block_are_refused_or_revoked():
    operator = User.objects.create_superuser(username="operator", email="op@example.com", password="pw")
    for round_number in range(ROUNDS):
        people = [make_user(f"r{round_number}p{i}") for i in range(PEOPLE)]
        pages = [open_consent_page(person) for person in people]
        barrier = threading.Barrier(PEOPLE + 1)
        results: list = [None] * (PEOPLE + 1)
        threads = [run(allow, results, i, client, rid, barrier) for i, (client, rid) in enumerate(pages)]
        threads.append(run(block_and_sweep, results, PEOPLE, operator, barrier))
        for thread in threads:
            thread.join(timeout=120)

        assert not [r for r in results if isinstance(r, BaseException)], results
        assert all(status in (302, 403) for status in results[:PEOPLE]), results
        # Right after the block's own sweep, with no second pass: nothing active.
        assert_nothing_slipped_through()
        ClientBlock.objects.update(unblocked_at=results[PEOPLE].created_at)  # next round, a fresh block


def test_a_block_waits_for_a_consent_already_past_its_check_and_then_revokes_it(monkeypatch):
    """The ordering itself, made deterministic: a consent holds still inside its transaction."""
    operator = User.objects.create_superuser(username="operator", email="op@example.com", password="pw")
    alice = make_user("alice")
    client, rid = open_consent_page(alice)
    inside, release = threading.Event(), threading.Event()
    original_key_create = services.key_create

    def key_create_slowly(**kwargs):
        inside.set()  # past the block check, in the consent's transaction
        assert release.wait(timeout=30)
        return original_key_create(**kwargs)

    monkeypatch.setattr(services, "key_create", key_create_slowly)
    results: list = [None, None]
    consent_thread = run(allow, results, 0, client, rid)
    assert inside.wait(timeout=30)
    block_thread = run(block_and_sweep, results, 1, operator)
    time.sleep(0.5)
    assert block_thread.is_alive(), "the block did not wait for the consent in flight"
    assert not ClientBlock.objects.exists()

    release.set()
    consent_thread.join(timeout=60)
    block_thread.join(timeout=60)
    assert results[0] == 302, results
    assert isinstance(results[1], ClientBlock), results
    grant = Grant.objects.get(user=alice)
    assert not grant.is_active and grant.revoked_by == Grant.RevokedBy.ADMIN
    assert_nothing_slipped_through()


def test_a_consent_that_starts_after_the_block_committed_is_refused():
    operator = User.objects.create_superuser(username="operator", email="op@example.com", password="pw")
    client, rid = open_consent_page(make_user("alice"))
    block_and_sweep(operator)
    assert allow(client, rid) == 403
    assert not Grant.objects.exists()


@pytest.mark.postgres
def test_on_postgresql_consents_do_not_wait_for_each_other():
    """Only a block waits for consents (and they for it): the lock consents take is shared."""
    from django.db import connection, transaction

    if connection.vendor != "postgresql":
        pytest.skip("the advisory lock exists on PostgreSQL only (SQLite runs one writer at a time)")

    def another_consent() -> str:
        with transaction.atomic():
            services.consents_lock(exclusive=False)
        return "done"

    with transaction.atomic():
        services.consents_lock(exclusive=False)
        results: list = [None]
        run(another_consent, results, 0).join(timeout=10)
    assert results == ["done"], "a second consent was held up by the first"
