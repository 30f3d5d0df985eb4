"""Another person's keys can be neither seen nor changed: guessed ids are 404, like missing ones."""

import re

import pytest

from accounts.audit import SYSTEM
from accounts.models import ApiKey
from accounts.services import key_create


@pytest.fixture
def bobs_key(bob) -> ApiKey:
    key, _ = key_create(user=bob, name="bob's deploy key", context=SYSTEM)
    return key


def test_someone_elses_keys_are_not_listed(alice_client, bobs_key):
    html = alice_client.get("/keys/").content.decode()
    assert "bob's deploy key" not in html and bobs_key.prefix not in html


@pytest.mark.parametrize("action", ["rename", "revoke"])
def test_someone_elses_key_pages_are_not_found(alice_client, bobs_key, action):
    assert alice_client.get(f"/keys/{bobs_key.pk}/{action}/").status_code == 404
    assert alice_client.get(f"/keys/{bobs_key.pk + 1000}/{action}/").status_code == 404


def test_someone_elses_key_can_be_neither_renamed_nor_revoked(alice_client, bobs_key):
    assert alice_client.post(f"/keys/{bobs_key.pk}/rename/", {"name": "pwned"}).status_code == 404
    assert alice_client.post(f"/keys/{bobs_key.pk}/revoke/").status_code == 404
    bobs_key.refresh_from_db()
    assert bobs_key.name == "bob's deploy key"
    assert bobs_key.is_active


def test_the_not_found_page_for_a_guessed_id_looks_like_any_other(alice_client, bobs_key):
    guessed = alice_client.get(f"/keys/{bobs_key.pk}/revoke/")
    missing = alice_client.get("/keys/999999/revoke/")
    assert guessed.status_code == missing.status_code == 404
    # Equal apart from the (per-response masked) CSRF token of the sign-out form.
    assert _unmasked(guessed) == _unmasked(missing)


def _unmasked(response) -> bytes:
    return re.sub(rb'value="[^"]+"', b"", response.content)
