"""The API keys page: list, create (the key shown once), rename, revoke."""

import re

from django.test import Client

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent
from accounts.services import key_create
from tests.conftest import approve, authorize_params


def create_key(client: Client, name: str = "CI server"):
    return client.post("/keys/new/", {"name": name})


def shown_key(response) -> str:
    match = re.search(rb'data-testid="new-key"', response.content)
    assert match, "the page shows the new key"
    found = re.findall(rb"kg_[0-9A-Za-z]{60}", response.content)
    assert len(set(found)) == 1
    return found[0].decode()


def test_the_list_shows_name_prefix_times_origin_and_status(alice, alice_client, pkce_pair):
    mine, _ = key_create(user=alice, name="laptop", context=SYSTEM)
    approve(alice_client, authorize_params(pkce_pair))  # a consent creates a key for yourapp.com
    revoked, _ = key_create(user=alice, name="old phone", context=SYSTEM)
    ApiKey.objects.filter(pk=revoked.pk).update(revoked_at=revoked.created_at)

    html = alice_client.get("/keys/").content.decode()
    assert "laptop" in html and mine.prefix in html
    assert "yourapp.com" in html and "(by your consent)" in html
    assert "old phone" in html and "Revoked" in html  # revoked keys stay listed
    assert "Never" in html  # last used
    assert html.count('class="status-active"') == 2
    assert '<label for="id_name">Name</label>' in html


def test_a_new_key_is_shown_once_in_the_answer_to_the_post(alice, alice_client):
    response = create_key(alice_client)
    assert response.status_code == 200  # rendered directly: no redirect, nothing in a URL or the session
    assert "no-store" in response["Cache-Control"]
    raw = shown_key(response)
    key = ApiKey.objects.get(user=alice)
    assert key.name == "CI server"
    assert raw.startswith(key.prefix)
    assert 'data-copy="new-key"' in response.content.decode()  # the Copy button (shown by static/js/copy.js)
    assert "<script src=" in response.content.decode() and "<script>" not in response.content.decode()

    # It works on the API...
    me = Client().get("/v1/me", HTTP_X_API_KEY=raw)
    assert me.status_code == 200
    assert me.json()["key"] == {"name": "CI server", "prefix": key.prefix}

    # ...and no later page, session or audit record ever contains it again.
    for path in [
        "/",
        "/keys/",
        f"/keys/{key.pk}/rename/",
        f"/keys/{key.pk}/revoke/",
        "/apps/",
        "/accounts/password/change/",
    ]:
        later = alice_client.get(path, follow=True)
        assert raw not in later.content.decode(), path
    renamed = alice_client.post(f"/keys/{key.pk}/rename/", {"name": "CI"}, follow=True)
    assert raw not in renamed.content.decode()
    assert raw not in str(dict(alice_client.session.items()))
    for event in AuditEvent.objects.all():
        assert raw not in str(event.detail)


def test_creating_a_key_needs_a_name(alice, alice_client):
    for name in ["", "   "]:
        response = create_key(alice_client, name)
        assert response.status_code == 400
        assert "This field is required" in response.content.decode() or "Enter a name" in response.content.decode()
    assert create_key(alice_client, "x" * 101).status_code == 400
    assert create_key(alice_client, "bad\x00name").status_code == 400
    assert not ApiKey.objects.filter(user=alice).exists()


def test_the_create_url_only_takes_a_post(alice_client):
    assert alice_client.get("/keys/new/").status_code == 405


def test_a_key_can_be_renamed(alice, alice_client, alice_key):
    key, raw = alice_key
    page = alice_client.get(f"/keys/{key.pk}/rename/")
    assert page.status_code == 200
    assert 'value="laptop"' in page.content.decode()
    response = alice_client.post(f"/keys/{key.pk}/rename/", {"name": "  work   laptop "})
    assert response["Location"] == "/keys/"
    key.refresh_from_db()
    assert key.name == "work laptop"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_RENAMED)
    assert event.detail == {"old_name": "laptop", "name": "work laptop"}
    assert event.actor == alice
    assert Client().get("/v1/me", HTTP_X_API_KEY=raw).json()["key"]["name"] == "work laptop"
    assert alice_client.post(f"/keys/{key.pk}/rename/", {"name": ""}).status_code == 400


def test_revoking_asks_for_confirmation_and_then_the_api_refuses_the_key_at_once(alice, alice_client, alice_key):
    key, raw = alice_key
    app = Client()
    assert app.get("/v1/me", HTTP_X_API_KEY=raw).status_code == 200

    confirm = alice_client.get(f"/keys/{key.pk}/revoke/")
    assert confirm.status_code == 200
    html = confirm.content.decode()
    assert f'<form method="post" action="/keys/{key.pk}/revoke/">' in html  # works without JavaScript
    key.refresh_from_db()
    assert key.is_active  # the GET changed nothing

    response = alice_client.post(f"/keys/{key.pk}/revoke/")
    assert response["Location"] == "/keys/"
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.KEY_REVOKED, key_prefix=key.prefix, actor=alice).exists()

    refused = app.get("/v1/me", HTTP_X_API_KEY=raw)
    assert refused.status_code == 401
    assert app.get("/v1/me", HTTP_AUTHORIZATION=f"Bearer {raw}").status_code == 401

    listing = alice_client.get("/keys/").content.decode()
    assert "laptop" in listing and "Revoked" in listing
    assert f"/keys/{key.pk}/revoke/" not in listing  # nothing left to do with it
    assert alice_client.get(f"/keys/{key.pk}/rename/").status_code == 404
    again = alice_client.post(f"/keys/{key.pk}/revoke/", follow=True)
    assert "already revoked" in again.content.decode()


def test_revoking_a_key_an_app_received_warns_that_the_app_loses_access(alice_client, pkce_pair):
    approve(alice_client, authorize_params(pkce_pair))
    key = ApiKey.objects.get(created_for_client="yourapp.com")
    html = alice_client.get(f"/keys/{key.pk}/revoke/").content.decode()
    assert "yourapp.com" in html and "will lose access" in html


def test_a_key_created_for_an_internationalised_host_names_it_in_unicode_beside_its_ascii_form(alice, alice_client):
    key, _ = key_create(user=alice, name="books", context=SYSTEM, created_for_client="xn--bcher-kva.example")
    html = alice_client.get("/keys/").content.decode()
    assert '<span class="host">bücher.example</span>' in html
    assert "<code>xn--bcher-kva.example</code>" in html
    assert "bücher.example" in alice_client.get(f"/keys/{key.pk}/revoke/").content.decode()
