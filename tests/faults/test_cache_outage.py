"""A shared cache that is down is no outage of the service (issue #15 item 1).

The cache here is real: a redis-server this test started and stopped (it
refuses connections), or a TCP server that accepts and never answers (it
hangs). Keygrant talks to it through Django's Redis backend with the
production timeouts (0.5 s). Sign-in, consent, the token exchange, device
polling and metadata documents keep working, each request within about a
second; the rate limits are counted in the database meanwhile; the outage
is logged once, not per request; and the limits go back to Redis by
themselves when it answers again. tests/faults/test_outages_live.py does the
same under gunicorn.
"""

import logging
import socket
import time
from contextlib import contextmanager
from urllib.parse import urlencode

import pytest
from django.test import Client, override_settings

from accounts.models import RateCounter
from accounts.shared_cache import guard
from oauthprovider.models import Grant
from tests.conftest import exchange, issue_code
from tests.processes import free_port, hung_server, redis_answers, redis_process, started, wait_until

pytestmark = pytest.mark.faults

# Each request may pay one cache timeout (0.5 s) before its process stops asking: "about a second".
BOUND_SECONDS = 1.2


def redis_caches(port: int) -> dict:
    return {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
            "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},  # config/settings.py's defaults
        }
    }


@contextmanager
def cache_at(port: int, *, retry_seconds: float = 5.0):
    """Keygrant's cache is the Redis at `port`, and counts rate limits there (as with CACHE_URL set)."""
    guard.__init__()  # this process has seen no outage yet
    try:
        with override_settings(CACHES=redis_caches(port), RATE_LIMIT_STORE="cache", CACHE_RETRY_SECONDS=retry_seconds):
            yield
    finally:
        guard.__init__()


@pytest.fixture(scope="module")
def stopped_redis(tmp_path_factory) -> int:
    """The port of a redis-server that ran and was stopped: connections are refused."""
    port = free_port()
    redis = redis_process(port, tmp_path_factory.mktemp("redis"))
    with started(redis, ready=lambda: redis_answers(port)):
        pass
    return port


@pytest.fixture(params=["refusing", "hanging"])
def dead_cache(request, stopped_redis):
    if request.param == "refusing":
        with cache_at(stopped_redis):
            yield request.param
    else:
        with hung_server() as port, cache_at(port):
            yield request.param


def timed(call, *args, **kwargs):
    start = time.monotonic()
    response = call(*args, **kwargs)
    elapsed = time.monotonic() - start
    assert elapsed < BOUND_SECONDS, f"a request waited {elapsed:.2f} s on a dead cache"
    return response


def sign_in(client: Client, username: str, password: str):
    return timed(client.post, "/accounts/login/", {"username": username, "password": password})


def test_signing_in_works_with_a_wrong_and_a_right_password(dead_cache, alice):
    browser = Client()
    assert sign_in(browser, "alice", "not-her-password").status_code == 200  # the form again, with an error
    assert sign_in(browser, "alice", "alice-password").status_code == 302


def test_consent_and_the_token_exchange_work(dead_cache, alice_client, pkce_pair):
    code = timed(issue_code, alice_client, pkce_pair)
    app = Client()
    assert timed(exchange, app, "not-a-code-" + "x" * 32, pkce_pair).status_code == 400
    assert timed(exchange, app, code, pkce_pair, code_verifier="w" * 43).status_code == 400
    token = timed(exchange, app, code, pkce_pair)
    assert token.status_code == 200, token.content
    key = token.json()["access_token"]
    assert timed(Client().get, "/v1/me", HTTP_X_API_KEY=key).status_code == 200
    assert Grant.objects.get().key.is_active


def test_the_limits_still_hold_counted_in_the_database(dead_cache, alice, settings):
    """Per-worker counting would give each worker its own allowance; the table is shared by all of them."""
    browser = Client()
    for _ in range(settings.LOGIN_THROTTLE_USERNAME_SLOWDOWN_AFTER):
        sign_in(browser, "alice", "wrong")
    refused = sign_in(browser, "alice", "alice-password")  # even the right one must wait now
    assert refused.status_code == 429 or "try again" in refused.content.decode().lower()
    assert RateCounter.objects.exists()


def test_the_outage_is_logged_once_not_per_request(dead_cache, alice, caplog):
    caplog.set_level(logging.WARNING, logger="accounts.shared_cache")
    browser, start = Client(), time.monotonic()
    for _ in range(5):
        sign_in(browser, "alice", "wrong")
    assert time.monotonic() - start < BOUND_SECONDS, "only the first request waits for the dead cache"
    errors = [r for r in caplog.records if r.name == "accounts.shared_cache" and r.levelno == logging.ERROR]
    assert len(errors) == 1, [r.getMessage() for r in errors]
    assert "rate limits are counted in the database" in errors[0].getMessage()


def test_a_device_polls_without_its_interval_being_checked(dead_cache, alice_client):
    form = "application/x-www-form-urlencoded"
    device = timed(Client().post, "/getKeys/device/code", urlencode({"client_id": "localhost"}), content_type=form)
    assert device.status_code == 200, device.content
    poll = urlencode(
        {
            "grant_type": "urn:ietf:params:oauth:grant-type:device_code",
            "device_code": device.json()["device_code"],
            "client_id": "localhost",
        }
    )
    for _ in range(2):  # the second poll comes too early; nothing can tell while the cache is down
        answer = timed(Client().post, "/getKeys/token", poll, content_type=form)
        assert answer.json()["error"] == "authorization_pending"


def test_a_metadata_document_is_fetched_each_time_instead_of_cached(dead_cache, alice_client, pkce_pair, settings):
    from tests.mcp.test_client_metadata_documents import DocumentServer, cimd_params, client_document

    settings.OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH = True
    docs = DocumentServer()
    try:
        url = docs.publish("/client.json", client_document(docs.base + "/client.json"))
        for _ in range(2):
            page = timed(alice_client.get, "/getKeys/authorize?" + urlencode(cimd_params(pkce_pair, url)))
            assert page.status_code == 200, page.content[:300]
        assert docs.hits.count("/client.json") == 2
    finally:
        docs.close()


def redis_keys(port: int) -> int:
    with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
        sock.sendall(b"DBSIZE\r\n")
        return int(sock.recv(64).strip().lstrip(b":"))


def test_the_limits_go_back_to_the_shared_cache_by_themselves(alice, bob, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="accounts.shared_cache")
    port = free_port()
    redis = redis_process(port, tmp_path)
    with started(redis, ready=lambda: redis_answers(port)), cache_at(port, retry_seconds=0.5):
        browser = Client()
        sign_in(browser, "alice", "wrong")
        assert redis_keys(port) > 0 and not RateCounter.objects.exists()  # counted in Redis

        redis.stop()
        sign_in(browser, "alice", "wrong")
        assert RateCounter.objects.exists()  # counted in the database meanwhile

        redis.start()
        wait_until(lambda: redis_answers(port), timeout=10, what="redis-server to start again")
        assert redis_keys(port) == 0  # a fresh server: nothing survived
        time.sleep(0.6)  # CACHE_RETRY_SECONDS
        sign_in(browser, "bob", "wrong")
        assert redis_keys(port) > 0  # counted in Redis again
    messages = [(r.levelname, r.getMessage()) for r in caplog.records if r.name == "accounts.shared_cache"]
    assert [level for level, _ in messages] == ["ERROR", "WARNING"], messages
    assert "answers again" in messages[1][1]


def test_a_long_outage_is_reported_again_once_a_minute(dead_cache, alice, caplog, monkeypatch):
    caplog.set_level(logging.WARNING, logger="accounts.shared_cache")
    now = [1000.0]
    monkeypatch.setattr("accounts.shared_cache._now", lambda: now[0])
    browser = Client()
    for _ in range(4):  # 0, 6, 12 s: tried again after each CACHE_RETRY_SECONDS, reported once
        sign_in(browser, "alice", "wrong")
        now[0] += 6
    now[0] += 60
    sign_in(browser, "alice", "wrong")
    errors = [r.getMessage() for r in caplog.records if r.name == "accounts.shared_cache"]
    assert len(errors) == 2, errors
    assert "still does not answer" in errors[1] and "after 84 s" in errors[1]
