"""People are told by mail: an app got a key, an app was disconnected for them, a key an app holds expires soon.

The mail is queued in the transaction of the event and sent after it
commits (tests run the after-commit work inline: BACKGROUND_TASKS=inline).
"""

import logging
import re
from datetime import timedelta

import pytest
from django.core import mail
from django.core.management import call_command
from django.test import Client
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.limits import KeyLimits
from accounts.models import ApiKey, Notification
from accounts.notifications import notifications_send_due, retry_delay
from accounts.services import key_create
from oauthprovider.models import Grant
from oauthprovider.services import grant_revoke
from tests.conftest import (
    approve,
    authorize_params,
    authorize_url,
    consent_request_id,
    exchange,
    new_pkce_pair,
    query_of,
)
from tests.oauthprovider.test_device_flow import approve as device_approve
from tests.oauthprovider.test_device_flow import start

ISSUER = "https://keys.example.com"
SECRET = re.compile(r"kg_[0-9A-Za-z]{60}")


@pytest.fixture(autouse=True)
def _issuer(settings):
    settings.OAUTH_ISSUER = ISSUER


@pytest.fixture
def committed(transactional_db):
    """Real commits, so that what follows each one (the sender) runs as it does for a real request."""


def allow(client, pkce=None, **overrides) -> str:
    """Allow yourapp.com (or `client_id`); returns the code."""
    pkce = pkce or new_pkce_pair()
    key = overrides.pop("key", "new")
    return query_of(approve(client, authorize_params(pkce, **overrides), key=key))["code"][0]


def bodies() -> str:
    return "\n".join(m.subject + "\n" + m.body for m in mail.outbox)


# --- An app got a key ----------------------------------------------------------------------------


def test_an_app_getting_a_new_key_is_told_once_with_what_which_app_and_a_link(alice, alice_client, committed):
    pkce = new_pkce_pair()
    code = allow(alice_client, pkce)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    key = Grant.objects.get().key
    assert message.to == ["alice@example.com"]
    assert message.subject == "A new API key for yourapp.com"
    assert "You allowed yourapp.com to get a new API key" in message.body
    assert key.masked in message.body
    assert f"{ISSUER}/apps/" in message.body and f"{ISSUER}/activity/" in message.body
    assert "If this was not you" in message.body
    # Sent once: nothing more to send, whoever looks again.
    assert notifications_send_due() == (0, 0)
    assert Notification.objects.get().sent_at is not None
    # No key, code or verifier in it (a prefix only).
    raw = exchange(Client(), code, pkce).json()["access_token"]
    for secret in (raw, code, pkce.verifier, pkce.challenge):
        assert secret not in bodies()
    assert not SECRET.search(bodies())


def test_links_in_mails_use_the_issuer_never_the_host_header(alice, committed, settings):
    settings.ALLOWED_HOSTS = ["evil.example", "testserver"]
    client = Client(HTTP_HOST="evil.example")
    client.force_login(alice)
    allow(client)
    assert "evil.example" not in bodies()
    assert f"{ISSUER}/apps/" in bodies()


def test_choosing_an_existing_key_is_told_too(alice, alice_client, alice_key, committed):
    allow(alice_client, key=str(alice_key[0].pk))
    assert mail.outbox[0].subject == "One of your API keys was given to yourapp.com"
    assert 'your existing API key "laptop"' in mail.outbox[0].body


def test_allowing_again_with_the_same_key_is_not_told_again(alice, alice_client, alice_key, committed):
    allow(alice_client, key=str(alice_key[0].pk))
    allow(alice_client, key=str(alice_key[0].pk))
    assert len(mail.outbox) == 1
    allow(alice_client)  # a new key: told
    assert len(mail.outbox) == 2


def test_allowing_again_after_a_revocation_is_told_again(alice, alice_client, alice_key, committed):
    allow(alice_client, key=str(alice_key[0].pk))
    grant_revoke(grant=Grant.objects.get(), by=Grant.RevokedBy.USER, context=SYSTEM, actor=alice)
    allow(alice_client, key=str(alice_key[0].pk))
    assert len(mail.outbox) == 2


def test_a_device_sign_in_is_told_without_the_user_code_or_device_code(alice, alice_client, committed):
    started = start(client_id="ci-runner")
    device_approve(alice_client, started)
    assert len(mail.outbox) == 1
    body = mail.outbox[0].body
    assert 'an app that calls itself "ci-runner" (name not verified)' in body
    assert "a device sign-in" in body
    assert started["user_code"] not in body and started["user_code"].replace("-", "") not in body
    assert started["device_code"] not in body


def test_an_app_that_names_itself_is_never_named_like_a_website(alice, alice_client, committed):
    allow(alice_client, client_id="github.com", redirect_uri="http://127.0.0.1:9000/cb")
    subject, body = mail.outbox[0].subject, mail.outbox[0].body
    assert subject == 'A new API key for an app that calls itself "github.com" (name not verified)'
    assert 'an app that calls itself "github.com" (name not verified)' in body


def test_a_rolled_back_consent_sends_nothing(alice, alice_client, committed, monkeypatch):
    from oauthprovider import services

    def broken_code_issue(**kwargs):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(services, "code_issue", broken_code_issue)
    page = alice_client.get(authorize_url(authorize_params(new_pkce_pair())))
    alice_client.raise_request_exception = False
    response = alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 500
    assert not Notification.objects.exists() and not Grant.objects.exists()
    assert mail.outbox == []


def test_a_person_without_an_email_address_gets_no_notice(alice, alice_client, committed):
    alice.email = ""
    alice.save()
    allow(alice_client)
    assert not Notification.objects.exists()


# --- Failures: never in the way, logged, retried ---------------------------------------------------


@pytest.fixture
def broken_mail(monkeypatch):
    from django.core.mail import EmailMessage

    calls = []

    def send(self, fail_silently=False, **kwargs):
        calls.append(self.subject)
        raise ConnectionRefusedError("smtp.example.com refused the connection")

    monkeypatch.setattr(EmailMessage, "send", send)
    return calls


def test_a_failed_send_never_breaks_the_consent(alice, alice_client, committed, broken_mail, caplog):
    pkce = new_pkce_pair()
    with caplog.at_level(logging.WARNING, logger="accounts.notifications"):
        code = allow(alice_client, pkce)
    assert exchange(Client(), code, pkce).status_code == 200
    assert broken_mail == ["A new API key for yourapp.com"]
    notification = Notification.objects.get()
    assert notification.sent_at is None and notification.failed_at is None
    assert notification.attempts == 1
    assert notification.next_attempt_at > timezone.now() + timedelta(seconds=50)
    assert "ConnectionRefusedError" in notification.last_error
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert f"notification {notification.pk}" in logged and "will retry" in logged
    assert "kg_" not in logged and "yourapp.com" not in logged, "logs carry ids, not the mail"


def test_a_failed_send_is_retried_later_with_a_growing_delay_then_given_up(alice, alice_client, committed, settings):
    from django.core.mail import EmailMessage

    settings.NOTIFICATION_MAX_ATTEMPTS = 3
    original = EmailMessage.send
    EmailMessage.send = lambda self, **kw: (_ for _ in ()).throw(OSError("down"))
    try:
        allow(alice_client)
        notification = Notification.objects.get()
        assert notifications_send_due() == (0, 0), "not due yet"
        Notification.objects.update(next_attempt_at=timezone.now())
        assert notifications_send_due() == (0, 1)
        notification.refresh_from_db()
        assert notification.attempts == 2 and notification.failed_at is None
        Notification.objects.update(next_attempt_at=timezone.now())
        notifications_send_due()
        notification.refresh_from_db()
        assert notification.attempts == 3 and notification.failed_at is not None, "given up after the last attempt"
    finally:
        EmailMessage.send = original
    Notification.objects.update(next_attempt_at=timezone.now())
    assert notifications_send_due() == (0, 0), "a notice given up is not sent"


def test_a_retried_notice_is_sent_once_the_mail_server_is_back(
    alice, alice_client, committed, broken_mail, monkeypatch
):
    allow(alice_client)
    monkeypatch.undo()
    Notification.objects.update(next_attempt_at=timezone.now())
    call_command("send_notifications", verbosity=0)
    assert len(mail.outbox) == 1
    call_command("send_notifications", verbosity=0)
    assert len(mail.outbox) == 1


def test_the_retry_delay_doubles_up_to_six_hours():
    assert [retry_delay(n).total_seconds() for n in (1, 2, 3, 4)] == [60, 120, 240, 480]
    assert retry_delay(30) == timedelta(hours=6)


# --- Access revoked for them ----------------------------------------------------------------------


def test_an_administrator_revoking_a_grant_is_told_with_the_keys_revoked(alice, alice_client, committed, settings):
    allow(alice_client)
    mail.outbox.clear()
    grant = Grant.objects.get()
    grant_revoke(grant=grant, by=Grant.RevokedBy.ADMIN, context=SYSTEM, reason="It leaked keys.")
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == "Disconnected from your account: yourapp.com"
    assert "An administrator of Keygrant disconnected yourapp.com" in message.body
    assert "The reason given: It leaked keys." in message.body
    assert grant.key.masked in message.body
    assert f"{ISSUER}/apps/" in message.body


def test_a_kept_own_key_is_named_so_the_person_can_revoke_it(alice, alice_client, alice_key, committed):
    allow(alice_client, key=str(alice_key[0].pk))
    mail.outbox.clear()
    grant_revoke(grant=Grant.objects.get(), by=Grant.RevokedBy.ADMIN, context=SYSTEM)
    body = mail.outbox[0].body
    assert 'It still holds your own key "laptop"' in body and f"{ISSUER}/keys/" in body


def test_a_code_replay_is_told(alice, alice_client, committed):
    pkce = new_pkce_pair()
    code = allow(alice_client, pkce)
    assert exchange(Client(), code, pkce).status_code == 200
    mail.outbox.clear()
    assert exchange(Client(), code, pkce).status_code == 400
    assert len(mail.outbox) == 1
    assert "used twice" in mail.outbox[0].body
    assert code not in mail.outbox[0].body


def test_disconnecting_an_app_oneself_is_not_told(alice, alice_client, committed):
    allow(alice_client)
    mail.outbox.clear()
    grant = Grant.objects.get()
    assert alice_client.post(f"/apps/{grant.pk}/revoke/").status_code == 302
    assert mail.outbox == []


def test_revoking_an_already_revoked_grant_is_not_told_twice(alice, alice_client, committed):
    allow(alice_client)
    mail.outbox.clear()
    grant = Grant.objects.get()
    grant_revoke(grant=grant, by=Grant.RevokedBy.ADMIN, context=SYSTEM)
    grant_revoke(grant=Grant.objects.get(), by=Grant.RevokedBy.ADMIN, context=SYSTEM)
    assert len(mail.outbox) == 1


# --- A week before a key an app holds expires -----------------------------------------------------


def app_key(alice_client, *, days: int = 30) -> ApiKey:
    page = alice_client.get(authorize_url(authorize_params(new_pkce_pair())))
    alice_client.post(
        "/getKeys/authorize",
        {"request": consent_request_id(page), "decision": "allow", "key": "new", "expiry": str(days)},
    )
    return Grant.objects.get().key


def at(moment, monkeypatch):
    monkeypatch.setattr(timezone, "now", lambda: moment)


def test_a_key_an_app_holds_is_announced_a_week_before_it_expires_once(alice, alice_client, committed, monkeypatch):
    key = app_key(alice_client, days=30)
    mail.outbox.clear()
    at(key.expires_at - timedelta(days=8), monkeypatch)
    call_command("send_notifications", verbosity=0)
    assert mail.outbox == [], "not yet"
    at(key.expires_at - timedelta(days=6, hours=23), monkeypatch)
    call_command("send_notifications", verbosity=0)
    call_command("send_notifications", verbosity=0)
    assert len(mail.outbox) == 1
    message = mail.outbox[0]
    assert message.subject == f'Your API key "yourapp.com" expires on {key.expires_at:%Y-%m-%d}'
    assert "which yourapp.com holds" in message.body
    assert f"{ISSUER}/keys/{key.pk}/limits/" in message.body
    assert "in 6\xa0days" in message.body
    assert not SECRET.search(message.body)


def test_an_extended_key_is_announced_again_before_its_new_expiry(alice, alice_client, committed, monkeypatch):
    key = app_key(alice_client, days=30)
    at(key.expires_at - timedelta(days=6), monkeypatch)
    call_command("send_notifications", verbosity=0)
    ApiKey.objects.filter(pk=key.pk).update(expires_at=key.expires_at + timedelta(days=30))
    call_command("send_notifications", verbosity=0)
    at(key.expires_at + timedelta(days=24), monkeypatch)
    call_command("send_notifications", verbosity=0)
    assert [m.subject.startswith('Your API key "yourapp.com" expires') for m in mail.outbox[1:]] == [True, True]


def test_a_short_lived_key_is_not_announced(alice, alice_client, committed, monkeypatch):
    key = app_key(alice_client, days=7)
    mail.outbox.clear()
    at(key.expires_at - timedelta(days=1), monkeypatch)
    call_command("send_notifications", verbosity=0)
    assert mail.outbox == []


def test_only_keys_an_app_holds_are_announced(alice, alice_client, committed, monkeypatch):
    now = timezone.now()
    mine, _ = key_create(user=alice, name="mine", context=SYSTEM, limits=KeyLimits(expires_at=now + timedelta(30)))
    chosen, _ = key_create(user=alice, name="chosen", context=SYSTEM, limits=KeyLimits(expires_at=now + timedelta(30)))
    allow(alice_client, key=str(chosen.pk))
    mail.outbox.clear()
    at(now + timedelta(days=25), monkeypatch)
    call_command("send_notifications", verbosity=0)
    assert [m.subject for m in mail.outbox] == [f'Your API key "chosen" expires on {chosen.expires_at:%Y-%m-%d}']


def test_a_revoked_or_expired_key_is_not_announced(alice, alice_client, committed, monkeypatch):
    key = app_key(alice_client, days=30)
    grant_revoke(grant=Grant.objects.get(), by=Grant.RevokedBy.USER, context=SYSTEM, actor=alice)
    mail.outbox.clear()
    at(key.expires_at - timedelta(days=3), monkeypatch)
    call_command("send_notifications", verbosity=0)
    assert mail.outbox == []


def test_old_notices_are_deleted_after_the_retention_period(alice, alice_client, committed, monkeypatch, settings):
    allow(alice_client)
    settings.NOTIFICATION_RETENTION_DAYS = 30
    at(timezone.now() + timedelta(days=31), monkeypatch)
    call_command("send_notifications", verbosity=0)
    assert not Notification.objects.exists()
