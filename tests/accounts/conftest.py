"""Fixtures for the accounts pages: a second signed-in person, a CSRF-checking browser, a clock."""

import time

import pytest
from django.test import Client

LOGIN_URL = "/accounts/login/"


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def strict_alice(alice) -> Client:
    """Alice in a browser whose POSTs are CSRF-checked like a real one's."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


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


def sign_in(client: Client, username: str, password: str, *, ip: str = "127.0.0.1", **data):
    return client.post(LOGIN_URL, {"username": username, "password": password, **data}, REMOTE_ADDR=ip)
