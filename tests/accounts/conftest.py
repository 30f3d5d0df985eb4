"""Fixtures for the accounts pages: a second signed-in person, a CSRF-checking browser."""

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


def sign_in(client: Client, username: str, password: str, *, ip: str = "127.0.0.1", **data):
    return client.post(LOGIN_URL, {"username": username, "password": password, **data}, REMOTE_ADDR=ip)
