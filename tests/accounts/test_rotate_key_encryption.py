"""rotate_key_encryption: after it, keys decrypt with the old key-encryption key removed."""

from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from accounts.audit import SYSTEM
from accounts.keys import KeyDecryptionError
from accounts.models import ApiKey, AuditEvent, TotpDevice
from accounts.services import key_create, key_revoke
from tests.accounts.factors import with_totp


@pytest.fixture
def old_kek(settings) -> str:
    kek = Fernet.generate_key().decode()
    settings.KEY_ENCRYPTION_KEYS = [kek]
    return kek


def run(*args: str) -> str:
    out = StringIO()
    call_command("rotate_key_encryption", *args, stdout=out)
    return out.getvalue()


def test_keys_still_decrypt_after_rotation_and_removal_of_the_old_key(settings, old_kek, alice, bob):
    created = [key_create(user=user, name=f"k{i}", context=SYSTEM) for i in range(3) for user in (alice, bob)]
    key_revoke(key=created[0][0], context=SYSTEM)  # revoked keys are re-encrypted too
    new_kek = Fernet.generate_key().decode()
    settings.KEY_ENCRYPTION_KEYS = [new_kek, old_kek]
    output = run("--batch-size", "4")
    assert "Re-encrypted 6 of 6 keys" in output
    settings.KEY_ENCRYPTION_KEYS = [new_kek]
    for key, raw in created:
        assert ApiKey.objects.get(pk=key.pk).plaintext() == raw


def test_without_rotation_removing_the_old_key_breaks_decryption(settings, old_kek, alice):
    key, _ = key_create(user=alice, name="k", context=SYSTEM)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(KeyDecryptionError):
        ApiKey.objects.get(pk=key.pk).plaintext()


def test_it_records_a_kek_rotated_event_with_counts(settings, old_kek, alice):
    key_create(user=alice, name="a", context=SYSTEM)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_kek]
    key_create(user=alice, name="b", context=SYSTEM)  # already under the new key
    run()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEK_ROTATED)
    assert event.actor_kind == AuditEvent.Actor.SYSTEM
    assert event.detail["keys"] == 2
    assert event.detail["reencrypted"] == 1
    assert event.detail["already_current"] == 1
    assert event.detail["failed"] == 0
    assert old_kek not in str(event.detail) and settings.KEY_ENCRYPTION_KEYS[0] not in str(event.detail)


def test_running_it_twice_rewrites_nothing_the_second_time(settings, old_kek, alice):
    key_create(user=alice, name="a", context=SYSTEM)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_kek]
    run()
    before = ApiKey.objects.get().key_encrypted
    assert "Re-encrypted 0 of 1 keys" in run()
    assert ApiKey.objects.get().key_encrypted == before


def test_a_dry_run_changes_nothing(settings, old_kek, alice):
    key, _ = key_create(user=alice, name="a", context=SYSTEM)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_kek]
    assert "Would re-encrypt 1 of 1 keys" in run("--dry-run")
    assert ApiKey.objects.get().key_encrypted == key.key_encrypted
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.KEK_ROTATED).exists()


def test_a_key_no_configured_kek_decrypts_fails_the_command(settings, old_kek, alice):
    key, raw = key_create(user=alice, name="lost", context=SYSTEM)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]  # old key removed too early
    with pytest.raises(CommandError, match="could not be decrypted"):
        run()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEK_ROTATED)
    assert event.detail["failed"] == 1 and event.detail["failed_prefixes"] == [key.prefix]
    assert raw not in str(event.detail)


def test_authenticator_secrets_are_re_encrypted_too(settings, old_kek, alice):
    secret, _ = with_totp(alice)
    settings.KEY_ENCRYPTION_KEYS = [Fernet.generate_key().decode(), old_kek]
    assert "Re-encrypted 1 of 1 authenticator-app secrets" in run()
    settings.KEY_ENCRYPTION_KEYS = settings.KEY_ENCRYPTION_KEYS[:1]  # the old key removed
    assert TotpDevice.objects.get(user=alice).secret() == secret
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEK_ROTATED)
    assert event.detail["totp_secrets"] == 1 and event.detail["totp_reencrypted"] == 1
    assert secret not in str(event.detail)
