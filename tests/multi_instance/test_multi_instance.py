"""DESIGN.md "Operators": stateless app servers. Two instances behind a real load balancer (issue #15 item 4).

Two gunicorn instances (2 workers each, DEBUG off, production settings)
share the test's PostgreSQL database and a redis-server of the test's own,
behind HAProxy running deploy/haproxy.cfg, the configuration
docs/operations.md shows. A code issued by one instance is redeemed at the
other; of concurrent redemptions split across both exactly one wins; a
revocation at one is seen at once by the other; rate limits are counted
once for both; and an instance killed under load costs no data, and no 5xx
once the balancer has marked it down.

PostgreSQL only (an SQLite file cannot be shared by instances on several
machines); the PostgreSQL run of .ci/run runs it.
"""

import socket
import threading
import time

import httpx
import pytest
from django.conf import settings as django_settings
from django.db import connection

from accounts.models import ApiKey, AuditEvent, RateCounter, User
from tests.integrity import broken_rows
from tests.people import APP, CLIENT_ID, Flows, Person, me
from tests.processes import deployment, free_port, redis_answers, redis_process, started

pytestmark = [pytest.mark.multi_instance, pytest.mark.postgres]

PASSWORD = "a-long-password-for-the-load"


def database_url() -> str:
    db = connection.settings_dict
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    return f"postgres://{db['USER']}{password}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"


@pytest.fixture(scope="module")
def stack(django_db_setup, django_db_blocker, tmp_path_factory):
    """Redis, two instances on the test database, HAProxy in front; all stopped by pid at the end."""
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL: run ./bin/test with DATABASE_URL=postgres://... (.ci/run does)")
    tmp = tmp_path_factory.mktemp("multi-instance")
    redis_port = free_port()
    cache_url = f"rediscache://127.0.0.1:{redis_port}/0"
    with started(redis_process(redis_port, tmp), ready=lambda: redis_answers(redis_port)):
        with deployment(tmp, database_url=database_url(), cache_url=cache_url) as running:
            running.redis_port = redis_port
            yield running


def redis_command(port: int, command: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(command + b"\r\n")
        return sock.recv(64).strip()


@pytest.fixture
def people(transactional_db, settings):
    """People with accounts (committed, so the instances see them); passwords hashed as in production."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]  # as the instances hash
    made: list[Person] = []

    def make(name: str, base: str) -> Person:
        User.objects.create_user(username=name, password=PASSWORD)
        made.append(Person(base, name, PASSWORD))
        return made[-1]

    yield make
    for person in made:
        person.close()


def test_a_code_issued_by_one_instance_is_redeemed_at_the_other(stack, people):
    first, second = stack.instances
    carol = people("carol", stack.url)
    assert carol.sign_in(base=second).status_code == 302
    consent = carol.consent(base=first)  # signed in at the second, consents at the first: sessions are shared
    token = carol.redeem(consent, base=second)
    assert token.status_code == 200, token.text
    key = token.json()["access_token"]
    assert [me(base, key).status_code for base in (first, second, stack.url)] == [200, 200, 200]


ROUNDS, RACERS = 20, 20


def test_of_concurrent_redemptions_split_across_both_instances_exactly_one_wins(stack, people):
    first, second = stack.instances
    dave = people("dave", stack.url)
    assert dave.sign_in().status_code == 302
    for round_ in range(ROUNDS):
        consent = dave.consent()
        barrier = threading.Barrier(RACERS)
        answers: list = [None] * RACERS

        def race(i: int, consent=consent, barrier=barrier, answers=answers) -> None:
            barrier.wait(timeout=30)
            try:
                answers[i] = dave.redeem(consent, base=(first, second)[i % 2]).status_code
            except httpx.HTTPError as exc:
                answers[i] = repr(exc)

        threads = [threading.Thread(target=race, args=(i,)) for i in range(RACERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert answers.count(200) == 1, (round_, answers)
        # The losers held the right verifier: a replay (the grant is revoked), and failures of this
        # address, which past OAUTH_TOKEN_FAILURES_PER_ADDRESS are answered 429.
        assert set(answers) <= {200, 400, 429}, (round_, answers)
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_ISSUED).count() == ROUNDS
    with connection.cursor() as cursor:
        assert broken_rows(cursor) == {}


def test_a_revocation_at_one_instance_is_seen_at_once_by_the_other(stack, people):
    first, second = stack.instances
    erin = people("erin", stack.url)
    assert erin.sign_in().status_code == 302
    key = erin.redeem(erin.consent()).json()["access_token"]
    assert me(second, key).status_code == 200

    revoked = APP.post(f"{first}/getKeys/revoke", data={"token": key, "client_id": CLIENT_ID})
    assert revoked.status_code == 200

    assert me(second, key).status_code == 401  # no cache of keys anywhere: at once
    assert me(stack.url, key).status_code == 401


def test_rate_limits_are_counted_once_for_both_instances(stack, people):
    first, second = stack.instances
    redis_command(stack.redis_port, b"FLUSHDB")  # earlier tests' token failures from this address
    frank = people("frank", stack.url)
    # The failure that reaches LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER is answered 429 (wait before the
    # next one), although each instance saw only some of the failures: they are counted together.
    slowdown = django_settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER
    answers = [frank.sign_in(password="wrong", base=(first, second)[i % 2]).status_code for i in range(slowdown)]
    assert answers == [200] * (slowdown - 1) + [429]
    assert frank.sign_in(base=(first, second)[slowdown % 2]).status_code == 429  # even the right password waits

    failures = django_settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS
    bad = {"grant_type": "authorization_code", "code": "x" * 43, "client_id": CLIENT_ID}
    bad |= {"redirect_uri": "https://yourapp.com/callback", "code_verifier": "v" * 43}
    statuses = [APP.post(f"{(first, second)[i % 2]}/getKeys/token", data=bad).status_code for i in range(failures + 1)]
    assert statuses == [400] * failures + [429]

    assert int(redis_command(stack.redis_port, b"DBSIZE").lstrip(b":")) > 0
    assert not RateCounter.objects.exists()  # counted in Redis, not in the database


def test_an_instance_killed_under_load_costs_no_data_and_no_5xx_once_marked_down(stack, people):
    load = Flows(stack.url, [people(f"load{i}", stack.url) for i in range(4)], seconds=8, max_flows=400)
    killed_at: list[float] = []
    marked_down_at: list[float] = []

    def kill_the_first_instance() -> None:
        time.sleep(3)
        stack.apps[0].kill()  # SIGKILL to its whole process group: the machine is gone
        killed_at.append(time.monotonic())
        stack.wait_for_states({"keygrant/app1": "DOWN"}, timeout=10)
        marked_down_at.append(time.monotonic())

    killer = threading.Thread(target=kill_the_first_instance)
    killer.start()
    load.run()
    killer.join(timeout=30)
    try:
        assert marked_down_at, "HAProxy never marked the killed instance down"
        down_after = marked_down_at[0] - killed_at[0]
        print(f"killed instance marked down after {down_after:.2f} s; statuses {load.statuses()}")
        assert down_after < 3, f"marked down after {down_after:.2f} s"
        assert sum(1 for r in load.records if r.end > marked_down_at[0]) > 20, "load went on after the kill"
        after = load.statuses(since=marked_down_at[0])
        assert all(status < 500 and status != 0 for status in after), after

        # No data lost: every key a 200 handed out is in the database, active, and works through the balancer.
        assert len(load.keys) > 20
        for key in load.keys:
            assert ApiKey.objects.for_raw_key(key) is not None  # stored, active
            assert me(stack.url, key).status_code == 200
        redeemed = AuditEvent.objects.filter(kind=AuditEvent.Kind.TOKEN_ISSUED).count()
        assert redeemed >= len(load.keys)
        with connection.cursor() as cursor:
            assert broken_rows(cursor) == {}  # every row has its partners (tests/integrity.py)
    finally:
        # The instance comes back, and the balancer sends it traffic again by itself.
        stack.apps[0].start()
        stack.wait_for_states({"keygrant/app1": "UP"}, timeout=20)
