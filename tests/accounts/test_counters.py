"""The counters behind every rate limit: atomic, shared by all workers, addresses bucketed sensibly."""

import json
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.db import connections
from django.test import RequestFactory

from accounts.audit import client_ip, parse_address
from accounts.counters import address_bucket, store

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def counters(db, counter_store):
    return store()


def test_hits_count_up_in_a_fixed_window_from_the_first(counters, clock):
    assert [counters.hit("k", window=60) for _ in range(3)] == [1, 2, 3]
    assert counters.peek("k") == 3
    clock.advance(59)
    assert counters.hit("k", window=60) == 4  # the window does not slide
    clock.advance(1)
    assert counters.peek("k") == 0
    assert counters.hit("k", window=60) == 1


def test_a_hit_can_be_taken_back(counters):
    counters.hit("k", window=60)
    counters.hit("k", window=60)
    counters.unhit("k")
    assert counters.peek("k") == 1
    counters.unhit("missing")  # nothing to take back: no error
    assert counters.peek("missing") == 0


def test_a_claim_succeeds_once_until_it_expires(counters, clock):
    assert counters.claim("lock", value=7, ttl=10) is True
    assert counters.claim("lock", value=8, ttl=10) is False
    assert counters.get_many(["lock", "other"]) == {"lock": 7}
    clock.advance(10)
    assert counters.claim("lock", value=9, ttl=10) is True
    counters.delete("lock")
    assert counters.get_many(["lock"]) == {}


def test_put_overwrites(counters, clock):
    counters.put("at", value=1, ttl=5)
    counters.put("at", value=2, ttl=5)
    assert counters.get_many(["at"]) == {"at": 2}
    clock.advance(5)
    assert counters.get_many(["at"]) == {}


def test_long_keys_are_stored_too(counters):
    key = "x" * 500
    assert counters.hit(key, window=60) == 1
    assert counters.hit(key, window=60) == 2
    assert counters.get_many([key]) == {key: 2}


def test_concurrent_hits_each_get_their_own_count(shared_database, counter_store):
    """Atomic: of 8 threads x 20 hits released together, no two hits read the same count."""
    counters = store()
    barrier = threading.Barrier(8)
    seen: list[int] = []
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker() -> None:
        try:
            barrier.wait(timeout=30)
            mine = [counters.hit("shared", window=60) for _ in range(20)]
            with lock:
                seen.extend(mine)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    pool = [threading.Thread(target=worker) for _ in range(8)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join(timeout=60)
    assert errors == []
    assert sorted(seen) == list(range(1, 161))


# --- Which store production uses --------------------------------------------------------


def production_env(tmp_path, **extra) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SECRET_KEY": "a-production-secret-" + "k" * 40,
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OAUTH_ISSUER": "https://keys.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "ENV_FILE": str(tmp_path / "no.env"),
        **extra,
    }


def run(env: dict[str, str], code: str) -> str:
    command = [sys.executable, "manage.py", "shell", "-c", code]
    result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


HIT = "from accounts.counters import count_hit; print(count_hit('login:alice', window=600))"


def test_without_cache_url_every_worker_of_an_instance_shares_the_counts(tmp_path):
    """Issue #13 item 2: two processes (two gunicorn workers) count on the same counters, with no set-up."""
    env = production_env(tmp_path)
    migrate = subprocess.run(
        [sys.executable, "manage.py", "migrate", "-v0"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert migrate.returncode == 0, migrate.stderr
    assert run(env, "from django.conf import settings; print(settings.RATE_LIMIT_STORE)") == "database"
    assert [run(env, HIT) for _ in range(3)] == ["1", "2", "3"]


@pytest.mark.parametrize(
    ("cache_url", "expected"),
    [
        ("rediscache://127.0.0.1:6379/11", "cache"),
        ("pymemcache://127.0.0.1:11211", "cache"),
        ("locmemcache://", "database"),  # per process: never with DEBUG off
        ("filecache:///tmp/keygrant-cache", "database"),  # shared, but its increments are not atomic
        ("dbcache://keygrant_cache", "database"),
        ("dummycache://", "database"),
    ],
)
def test_production_counts_in_the_cache_only_when_it_is_shared_and_atomic(tmp_path, cache_url, expected):
    env = production_env(tmp_path, CACHE_URL=cache_url)
    code = "import json; from django.conf import settings as s; print(json.dumps(s.RATE_LIMIT_STORE))"
    assert json.loads(run(env, code)) == expected


# --- Client addresses ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "address"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("203.0.113.7:8443", "203.0.113.7"),
        (" 203.0.113.7 ", "203.0.113.7"),
        ("2001:db8::1", "2001:db8::1"),
        ("[2001:db8::1]", "2001:db8::1"),
        ("[2001:db8::1]:443", "2001:db8::1"),
        ("fe80::1%eth0", "fe80::1"),
        ("::ffff:203.0.113.7", "203.0.113.7"),
        ("", None),
        ("unknown", None),
        ("[2001:db8::1", None),
        ("203.0.113.7:80:90", None),
        ("2001:db8::1\x00", None),
    ],
)
def test_addresses_are_read_as_proxies_write_them(text, address):
    parsed = parse_address(text)
    assert (str(parsed) if parsed is not None else None) == address


def test_the_audit_log_gets_the_address_without_its_port(settings):
    settings.TRUSTED_PROXY_COUNT = 1
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR="198.51.100.4:5123")
    assert client_ip(request) == "198.51.100.4"


@pytest.mark.parametrize(
    ("ip", "bucket"),
    [
        ("203.0.113.7", "203.0.113.7"),
        ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
        ("2001:db8:1:2::1", "2001:db8:1:2::/64"),
        (None, None),
        ("", None),
        ("not an address", None),
    ],
)
def test_limits_count_ipv6_per_64_and_never_pool_unknown_addresses(ip, bucket):
    assert address_bucket(ip) == bucket
