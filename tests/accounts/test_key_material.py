"""API keys: recognisable, high-entropy, encrypted at rest, checked without decryption."""

import math

import pytest
from django.db import connection
from django.test import Client

from accounts import keys
from accounts.audit import SYSTEM
from accounts.models import ApiKey
from accounts.services import key_create


def test_a_key_has_a_recognisable_prefix_and_a_valid_checksum():
    raw = keys.generate_raw_key()
    assert raw.startswith("kg_")
    assert len(raw) == keys.KEY_LENGTH
    assert keys.looks_like_key(raw)


def _base62_value(text: str) -> int:
    alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    value = 0
    for char in text:
        value = value * 62 + alphabet.index(char)
    return value


def test_a_key_carries_at_least_256_secret_bits_beyond_its_visible_prefix():
    raws = [keys.generate_raw_key() for _ in range(200)]
    visible = len(keys.visible_prefix(raws[0]))
    secret_parts = [raw[visible:-6] for raw in raws]  # less the visible prefix and the checksum
    # The hidden part is a uniformly random number: over 200 keys the largest one
    # uses (nearly) all its bits, which fewer random bytes could not fill.
    assert max(_base62_value(part) for part in secret_parts).bit_length() >= 256
    assert len(secret_parts[0]) * math.log2(62) >= 256
    # And it is random at every position, not padding around a shorter secret.
    for position in range(len(secret_parts[0])):
        assert len({part[position] for part in secret_parts}) > 10, position


def test_keys_are_unique():
    assert len({keys.generate_raw_key() for _ in range(1000)}) == 1000


@pytest.mark.parametrize("position", [3, 20, -1])
def test_a_single_typo_fails_the_checksum(position):
    raw = keys.generate_raw_key()
    typo = raw[:position] + ("A" if raw[position] != "A" else "B") + (raw[position + 1 :] if position != -1 else "")
    assert not keys.looks_like_key(typo)


def test_the_stored_row_holds_ciphertext_and_a_hash_never_the_key(alice):
    key, raw = key_create(user=alice, name="laptop", context=SYSTEM)
    with connection.cursor() as cursor:
        cursor.execute("SELECT key_hash, key_encrypted, prefix FROM accounts_apikey WHERE id = %s", [key.pk])
        key_hash, encrypted, prefix = cursor.fetchone()
    assert raw not in key_hash and raw not in encrypted
    assert key_hash == keys.hash_key(raw)
    assert keys.decrypt_key(encrypted) == raw
    assert prefix == raw[: len(prefix)] and len(prefix) < 16


def test_the_api_checks_keys_without_decrypting_them(alice, monkeypatch):
    _, raw = key_create(user=alice, name="laptop", context=SYSTEM)

    def no_decryption(token):
        raise AssertionError("/v1/me decrypted a key")

    monkeypatch.setattr(keys, "decrypt_key", no_decryption)
    assert Client().get("/v1/me", HTTP_X_API_KEY=raw).status_code == 200


def test_the_api_looks_a_key_up_by_its_hash_in_one_query(alice, django_assert_max_num_queries):
    _, raw = key_create(user=alice, name="laptop", context=SYSTEM)
    Client().get("/v1/me", HTTP_X_API_KEY=raw)  # first use of the minute writes last_used_at
    with django_assert_max_num_queries(1):
        assert Client().get("/v1/me", HTTP_X_API_KEY=raw).status_code == 200


def test_a_key_from_another_encryption_key_is_reported_not_crashed(alice, settings):
    from cryptography.fernet import Fernet

    key, _ = key_create(user=alice, name="laptop", context=SYSTEM)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(keys.KeyDecryptionError):
        ApiKey.objects.get(pk=key.pk).plaintext()


def test_a_key_encryption_key_mistake_does_not_burn_the_code(alice_client, pkce_pair, settings):
    from cryptography.fernet import Fernet

    from tests.conftest import exchange, issue_code

    code = issue_code(alice_client, pkce_pair)
    good_keys = settings.KEY_ENCRYPTION_KEYS
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # the operator dropped the old key
    response = exchange(Client(), code, pkce_pair)
    assert response.status_code == 500
    assert response.json()["error"] == "server_error"
    settings.KEY_ENCRYPTION_KEYS = good_keys
    assert exchange(Client(), code, pkce_pair).status_code == 200
