"""Operators see a key's limits in admin: an expired key looks expired there too; outgoing mail is listed."""

from datetime import timedelta

from django.urls import reverse
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.limits import KeyLimits
from accounts.models import ApiKey
from accounts.services import key_create

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
