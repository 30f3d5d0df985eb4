"""Operators see a key's limits in admin: an expired key looks expired there too; outgoing mail is listed."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.limits import KeyLimits
from accounts.models import ApiKey, Notification
from accounts.services import key_create
from tests.conftest import make_user

KEYS = reverse("admin:accounts_apikey_changelist")


def expired_key(user) -> ApiKey:
    key, _ = key_create(
        user=user, name="old", context=SYSTEM, limits=KeyLimits(expires_at=timezone.now() + timedelta(1))
    )
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(hours=2))
    key.refresh_from_db()
    return key


def test_an_expired_key_looks_expired_in_the_list_and_on_its_page(operator_client, alice):
    key = expired_key(alice)
    listing = operator_client.get(KEYS).content.decode()
    assert f"Expired {key.expires_at:%Y-%m-%d %H:%M}" in listing
    page = operator_client.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content.decode()
    assert f"Expired {key.expires_at:%Y-%m-%d %H:%M}" in page


def test_the_status_filter_tells_active_expired_and_revoked_keys_apart(operator_client, alice, alice_key):
    expired_key(alice)
    active = operator_client.get(KEYS + "?status=active").content.decode()
    expired = operator_client.get(KEYS + "?status=expired").content.decode()
    assert "laptop" in active and ">old<" not in active
    assert ">old<" in expired and "laptop" not in expired


def test_a_keys_page_shows_its_allowed_addresses(operator_client, alice):
    key, _ = key_create(
        user=alice, name="ci", context=SYSTEM, limits=KeyLimits(allowed_networks=("203.0.113.0/24", "2001:db8::/32"))
    )
    page = operator_client.get(reverse("admin:accounts_apikey_change", args=[key.pk])).content.decode()
    assert "203.0.113.0/24, 2001:db8::/32" in page


def test_a_grant_whose_key_expired_says_so(operator_client, alice_client, grant_with_new_key):
    ApiKey.objects.filter(pk=grant_with_new_key.key_id).update(expires_at=timezone.now() - timedelta(1))
    listing = operator_client.get(reverse("admin:oauthprovider_grant_changelist")).content.decode()
    assert f"{grant_with_new_key.key.masked} (expired)" in listing


def test_outgoing_mail_is_listed_read_only_with_its_status(operator_client, alice):
    notice = Notification.objects.create(
        user=alice, kind=Notification.Kind.APP_GOT_KEY, to_address=alice.email, subject="Hi", body="Body text"
    )
    Notification.objects.filter(pk=notice.pk).update(attempts=2, last_error="OSError: down")
    listing = operator_client.get(reverse("admin:accounts_notification_changelist")).content.decode()
    assert "alice@example.com" in listing and "retrying" in listing and "OSError: down" in listing
    waiting = operator_client.get(reverse("admin:accounts_notification_changelist") + "?status=waiting")
    assert "alice@example.com" in waiting.content.decode()
    change = reverse("admin:accounts_notification_change", args=[notice.pk])
    assert "Body text" in operator_client.get(change).content.decode()
    assert operator_client.post(change, {"subject": "changed", "_save": "Save"}).status_code == 403
    assert operator_client.get(reverse("admin:accounts_notification_add")).status_code == 403


def test_the_outgoing_mail_list_costs_the_same_at_3_and_30_rows(operator_client, alice):
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    def count() -> int:
        with CaptureQueriesContext(connection) as captured:
            assert operator_client.get(reverse("admin:accounts_notification_changelist")).status_code == 200
        return len(captured.captured_queries)

    def notices(n: int) -> None:
        for _ in range(n):
            user = make_user(f"person{Notification.objects.count():03d}")
            Notification.objects.create(
                user=user, kind=Notification.Kind.ACCESS_REVOKED, to_address=user.email, subject="s", body="b"
            )

    notices(3)
    count()
    few = count()
    notices(27)
    assert count() == few


def test_a_grants_page_names_its_expired_key_as_expired(operator_client, grant_with_new_key):
    ApiKey.objects.filter(pk=grant_with_new_key.key_id).update(expires_at=timezone.now() - timedelta(1))
    page = operator_client.get(reverse("admin:oauthprovider_grant_change", args=[grant_with_new_key.pk]))
    assert f"{grant_with_new_key.key.masked}, expired)" in page.content.decode()
