"""The connected apps page: grants listed as on the consent page, and revoked per DESIGN.md "Grants"."""

import pytest
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, AuditEvent
from oauthprovider.models import Grant
from tests.conftest import exchange, issue_code


def connect(client: Client, pkce, *, key: str = "new") -> str:
    """Alice allows yourapp.com and the app redeems its code; returns the key the app holds."""
    code = issue_code(client, pkce, key=key)
    response = exchange(Client(), code, pkce)
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def api_status(raw: str) -> int:
    return Client().get("/v1/me", HTTP_X_API_KEY=raw).status_code


@pytest.fixture
def bob_client(bob) -> Client:
    client = Client()
    client.force_login(bob)
    return client


def test_the_page_lists_each_app_with_its_key_and_times(alice, alice_client, pkce_pair):
    connect(alice_client, pkce_pair)
    grant = Grant.objects.get(user=alice)
    page = alice_client.get("/apps/")
    assert page.status_code == 200
    html = page.content.decode()
    assert 'data-testid="app-host">yourapp.com<' in html
    assert grant.key.name in html and grant.key.prefix in html
    assert "created for this app" in html
    assert grant.first_authorized_at.strftime("%Y-%m-%d") in html
    assert "Connected" in html
    assert f'href="/apps/{grant.pk}/revoke/"' in html
    assert 'href="/apps/" aria-current="page"' in html


def test_an_internationalised_host_is_shown_in_unicode_with_punycode_beside_it(alice, alice_client):
    Grant.objects.create(user=alice, client_id="xn--bcher-kva.example", scope="key:read")
    html = alice_client.get("/apps/").content.decode()
    assert 'data-testid="app-host">bücher.example<' in html
    assert 'data-testid="app-punycode">xn--bcher-kva.example<' in html


def test_a_loopback_client_is_marked_as_an_app_on_your_own_computer(alice, alice_client):
    grant = Grant.objects.create(user=alice, client_id="127.0.0.1", scope="key:read")
    assert "an app running on your own computer" in alice_client.get("/apps/").content.decode()
    assert "an app running on your own computer" in alice_client.get(f"/apps/{grant.pk}/revoke/").content.decode()


def test_no_apps_yet_says_so(alice_client):
    assert "No apps yet" in alice_client.get("/apps/").content.decode()


def test_revoking_an_app_revokes_the_key_created_for_it(alice, alice_client, pkce_pair):
    raw = connect(alice_client, pkce_pair)
    grant = Grant.objects.get(user=alice)
    assert api_status(raw) == 200

    confirm = alice_client.get(f"/apps/{grant.pk}/revoke/")
    html = confirm.content.decode()
    assert confirm.status_code == 200
    assert "revoked with it" in html and grant.key.prefix in html
    assert 'name="key" value="keep"' not in html  # nothing to choose: the key was made for this app
    grant.refresh_from_db()
    assert grant.is_active  # the GET changed nothing

    response = alice_client.post(f"/apps/{grant.pk}/revoke/")
    assert response["Location"] == "/apps/"
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert grant.revoked_by == Grant.RevokedBy.USER
    assert grant.revoked_by_user == alice
    assert grant.key.revoked_at is not None
    assert api_status(raw) == 401  # at once

    listing = alice_client.get("/apps/").content.decode()
    assert "Revoked" in listing and "by you" in listing
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.GRANT_REVOKED, client_id="yourapp.com").exists()


def test_revoking_an_app_that_got_an_existing_key_explains_the_app_still_holds_it(alice_client, alice_key, pkce_pair):
    key, raw = alice_key
    connect(alice_client, pkce_pair, key=str(key.pk))
    grant = Grant.objects.get(key=key)
    confirm = alice_client.get(f"/apps/{grant.pk}/revoke/")
    html = confirm.content.decode()
    assert 'data-testid="held-key-notice"' in html
    assert "still holds that key" in html and key.prefix in html
    assert 'name="key" value="keep"' in html and 'name="key" value="revoke"' in html


def test_keeping_the_existing_key_revokes_only_the_grant(alice_client, alice_key, pkce_pair):
    key, raw = alice_key
    connect(alice_client, pkce_pair, key=str(key.pk))
    grant = Grant.objects.get(key=key)
    response = alice_client.post(f"/apps/{grant.pk}/revoke/", {"key": "keep"}, follow=True)
    assert "still works" in response.content.decode()
    grant.refresh_from_db()
    key.refresh_from_db()
    assert grant.revoked_at is not None
    assert key.is_active
    assert api_status(raw) == 200


def test_revoking_the_existing_key_too_stops_it_at_once(alice_client, alice_key, pkce_pair):
    key, raw = alice_key
    connect(alice_client, pkce_pair, key=str(key.pk))
    grant = Grant.objects.get(key=key)
    alice_client.post(f"/apps/{grant.pk}/revoke/", {"key": "revoke"})
    grant.refresh_from_db()
    key.refresh_from_db()
    assert grant.revoked_at is not None
    assert key.revoked_at is not None
    assert api_status(raw) == 401


def test_with_an_existing_key_the_choice_must_be_made(alice_client, alice_key, pkce_pair):
    key, raw = alice_key
    connect(alice_client, pkce_pair, key=str(key.pk))
    grant = Grant.objects.get(key=key)
    for data in [{}, {"key": "maybe"}]:
        response = alice_client.post(f"/apps/{grant.pk}/revoke/", data)
        assert response.status_code == 400
        assert "Choose whether to revoke the key too" in response.content.decode()
    grant.refresh_from_db()
    assert grant.is_active and api_status(raw) == 200


def test_keys_an_earlier_consent_created_for_the_app_go_with_it(alice_client, alice_key, pkce_pair):
    first = connect(alice_client, pkce_pair)  # first time: a new key for yourapp.com
    key, raw = alice_key
    connect(alice_client, pkce_pair, key=str(key.pk))  # later: one of alice's own keys
    grant = Grant.objects.get(client_id="yourapp.com")
    html = alice_client.get(f"/apps/{grant.pk}/revoke/").content.decode()
    assert "revoked with it" in html
    alice_client.post(f"/apps/{grant.pk}/revoke/", {"key": "keep"})
    assert api_status(first) == 401
    assert api_status(raw) == 200


def test_an_already_revoked_app_has_nothing_left_to_revoke(alice, alice_client):
    grant = Grant.objects.create(
        user=alice, client_id="yourapp.com", scope="key:read", revoked_at=timezone.now(), revoked_by="admin"
    )
    html = alice_client.get("/apps/").content.decode()
    assert "(an administrator)" in html
    assert f"/apps/{grant.pk}/revoke/" not in html
    response = alice_client.post(f"/apps/{grant.pk}/revoke/", follow=True)
    assert "already disconnected" in response.content.decode()


def test_someone_elses_apps_can_be_neither_seen_nor_revoked(alice, alice_client, bob_client, pkce_pair):
    raw = connect(alice_client, pkce_pair)
    grant = Grant.objects.get(user=alice)
    assert "yourapp.com" not in bob_client.get("/apps/").content.decode()
    assert bob_client.get(f"/apps/{grant.pk}/revoke/").status_code == 404
    assert bob_client.post(f"/apps/{grant.pk}/revoke/", {"key": "revoke"}).status_code == 404
    assert bob_client.get(f"/apps/{grant.pk + 1000}/revoke/").status_code == 404
    grant.refresh_from_db()
    assert grant.is_active and api_status(raw) == 200


def test_revoking_an_app_needs_the_csrf_token(alice, pkce_pair):
    browser = Client()
    browser.force_login(alice)
    raw = connect(browser, pkce_pair)
    grant = Grant.objects.get(user=alice)
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(alice)
    assert strict.post(f"/apps/{grant.pk}/revoke/").status_code == 403
    grant.refresh_from_db()
    assert grant.is_active and api_status(raw) == 200


def test_the_page_needs_a_signed_in_person(db):
    assert Client().get("/apps/")["Location"].startswith("/accounts/login/?next=/apps/")


def test_the_key_an_app_received_is_never_shown_on_the_page(alice_client, pkce_pair):
    raw = connect(alice_client, pkce_pair)
    grant = Grant.objects.get()
    assert raw not in alice_client.get("/apps/").content.decode()
    assert raw not in alice_client.get(f"/apps/{grant.pk}/revoke/").content.decode()
    assert ApiKey.objects.filter(created_for_client="yourapp.com").count() == 1
