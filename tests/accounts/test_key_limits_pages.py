"""Limits on a key, chosen on the keys page and changed later on its limits page."""

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.limits import KeyLimits
from accounts.models import ApiKey, AuditEvent
from accounts.services import key_create, key_revoke


def create(client, **data):
    return client.post("/keys/new/", {"name": "CI server", **data})


def near(moment, expected, *, slack=timedelta(seconds=30)) -> bool:
    return abs(moment - expected) < slack


# --- Creating a key with limits -------------------------------------------------------------


def test_the_keys_page_offers_expiry_and_addresses_with_the_operator_default_selected(alice_client, settings):
    settings.API_KEY_DEFAULT_EXPIRY_DAYS = 30
    html = alice_client.get("/keys/").content.decode()
    assert '<select name="expiry"' in html
    assert '<option value="30" selected>30 days</option>' in html
    assert '<option value="never">Never</option>' in html
    assert 'type="date"' in html and 'name="allowed_networks"' in html
    assert '<label for="id_allowed_networks">Allowed addresses</label>' in html


def test_a_key_created_with_30_days_expires_in_30_days(alice, alice_client):
    response = create(alice_client, expiry="30")
    assert response.status_code == 200
    key = ApiKey.objects.get(user=alice)
    assert near(key.expires_at, timezone.now() + timedelta(days=30))
    assert key.allowed_networks == []


def test_a_key_created_without_a_choice_gets_the_default_expiry(alice, alice_client, settings):
    settings.API_KEY_DEFAULT_EXPIRY_DAYS = 90
    create(alice_client)
    assert near(ApiKey.objects.get(user=alice).expires_at, timezone.now() + timedelta(days=90))
    settings.API_KEY_DEFAULT_EXPIRY_DAYS = 0
    create(alice_client, name="second")
    assert ApiKey.objects.get(name="second").expires_at is None


def test_a_key_created_on_a_date_expires_as_that_day_begins(alice, alice_client):
    day = (timezone.now() + timedelta(days=20)).date()
    create(alice_client, expiry="date", expiry_date=day.isoformat())
    expires_at = ApiKey.objects.get(user=alice).expires_at
    assert expires_at.date() == day and (expires_at.hour, expires_at.minute) == (0, 0)


def test_a_key_created_with_an_allowlist_keeps_the_normalised_networks(alice, alice_client):
    create(alice_client, expiry="never", allowed_networks="203.0.113.0/24\n2001:DB8::/32, 198.51.100.7")
    key = ApiKey.objects.get(user=alice)
    assert key.expires_at is None
    assert key.allowed_networks == ["203.0.113.0/24", "2001:db8::/32", "198.51.100.7/32"]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_CREATED)
    assert event.detail["allowed_networks"] == key.allowed_networks


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ({"allowed_networks": "192.168.1.5/24"}, "did you mean 192.168.1.0/24"),
        ({"allowed_networks": "not-an-ip"}, "is not an IP address or network"),
        ({"allowed_networks": ",".join(f"10.{i}.0.0/16" for i in range(33))}, "At most 32"),
        ({"expiry": "date"}, "Choose the date"),
        ({"expiry": "date", "expiry_date": "2001-01-01"}, "must be in the future"),
        ({"expiry": "date", "expiry_date": "31/12/2030"}, "Enter the date as YYYY-MM-DD"),
        ({"expiry": "date", "expiry_date": "9999-12-31"}, "at most ten years"),
        ({"expiry": "forever"}, "Choose when the key expires"),
        ({"expiry": "0"}, "Choose when the key expires"),
    ],
)
def test_unusable_limits_get_a_form_error_and_create_nothing(alice, alice_client, data, error):
    response = create(alice_client, **data)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not ApiKey.objects.filter(user=alice).exists()


def test_the_keys_page_shows_each_keys_limits_and_status(alice, alice_client):
    now = timezone.now()
    key_create(
        user=alice,
        name="limited",
        context=SYSTEM,
        limits=KeyLimits(expires_at=now + timedelta(days=3), allowed_networks=("203.0.113.0/24",)),
    )
    key_create(user=alice, name="forever", context=SYSTEM)
    expired, _ = key_create(user=alice, name="old", context=SYSTEM, limits=KeyLimits(expires_at=now + timedelta(1)))
    ApiKey.objects.filter(pk=expired.pk).update(expires_at=now - timedelta(hours=1))

    html = alice_client.get("/keys/").content.decode()
    limited = html.split("limited", 1)[1].split("</tr>", 1)[0]
    assert "Expires" in limited and "(in 2\xa0days" in limited and "UTC" in limited
    assert "Only from <code>203.0.113.0/24</code>" in limited
    forever = html.split("forever", 1)[1].split("</tr>", 1)[0]
    assert "Never expires" in forever and "Any address" in forever
    old = html.split(">old<", 1)[1].split("</tr>", 1)[0]
    assert '<span class="status-expired">Expired</span>' in old
    assert "key_limits" not in old and f"/keys/{expired.pk}/limits/" not in old  # expiry is final
    assert html.count('class="status-active"') == 2


# --- Changing the limits later ----------------------------------------------------------------


@pytest.fixture
def expiring_key(alice):
    key, raw = key_create(
        user=alice, name="laptop", context=SYSTEM, limits=KeyLimits(expires_at=timezone.now() + timedelta(days=2))
    )
    return key


def test_the_limits_page_shows_the_current_limits_and_keeps_them_by_default(alice_client, expiring_key):
    response = alice_client.get(f"/keys/{expiring_key.pk}/limits/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<option value="keep" selected>Unchanged (' in html
    response = alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"allowed_networks": "10.0.0.0/8"})
    assert response.status_code == 302
    before = expiring_key.expires_at
    expiring_key.refresh_from_db()
    assert expiring_key.expires_at == before
    assert expiring_key.allowed_networks == ["10.0.0.0/8"]


def test_a_key_nearing_expiry_can_be_extended_by_its_owner(alice, alice_client, expiring_key):
    response = alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"expiry": "90", "allowed_networks": ""})
    assert response.status_code == 302
    expiring_key.refresh_from_db()
    assert near(expiring_key.expires_at, timezone.now() + timedelta(days=90))
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_LIMITS_CHANGED)
    assert event.subject == alice and event.actor == alice and event.key_prefix == expiring_key.prefix
    assert event.detail["new"]["expires_at"] == expiring_key.expires_at.isoformat()
    assert event.detail["old"]["expires_at"] is not None


def test_a_key_can_be_made_to_never_expire_or_to_expire_sooner(alice_client, expiring_key):
    alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"expiry": "never"})
    expiring_key.refresh_from_db()
    assert expiring_key.expires_at is None
    alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"expiry": "7"})
    expiring_key.refresh_from_db()
    assert near(expiring_key.expires_at, timezone.now() + timedelta(days=7))


def test_an_expired_key_cannot_be_revived(alice_client, expiring_key):
    ApiKey.objects.filter(pk=expiring_key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    page = alice_client.get(f"/keys/{expiring_key.pk}/limits/", follow=True)
    assert "is expired: its limits can no longer change" in page.content.decode()
    alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"expiry": "never"})
    expiring_key.refresh_from_db()
    assert expiring_key.is_expired()
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.KEY_LIMITS_CHANGED).exists()


def test_a_revoked_key_keeps_its_limits(alice_client, expiring_key):
    key_revoke(key=expiring_key, context=SYSTEM)
    alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"expiry": "never"})
    expiring_key.refresh_from_db()
    assert expiring_key.expires_at is not None


def test_somebody_elses_key_is_a_404(bob, alice_client):
    bobs, _ = key_create(user=bob, name="bob's", context=SYSTEM)
    assert alice_client.get(f"/keys/{bobs.pk}/limits/").status_code == 404
    assert alice_client.post(f"/keys/{bobs.pk}/limits/", {"expiry": "never"}).status_code == 404


def test_bad_limits_on_the_limits_page_are_a_form_error(alice_client, expiring_key):
    response = alice_client.post(f"/keys/{expiring_key.pk}/limits/", {"allowed_networks": "10.0.0.1/8"})
    assert response.status_code == 400
    assert "host bits" in response.content.decode()
    expiring_key.refresh_from_db()
    assert expiring_key.allowed_networks == []
