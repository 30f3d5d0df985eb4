"""Signing in and out, and where the user goes afterwards (no open redirect through `next`)."""

import pytest
from django.test import Client

from accounts.models import AuditEvent
from tests.accounts.conftest import LOGIN_URL, sign_in
from tests.conftest import authorize_params, authorize_url


def test_the_login_page_has_labelled_fields_and_a_password_reset_link(db):
    page = Client().get(LOGIN_URL)
    assert page.status_code == 200
    html = page.content.decode()
    assert '<label for="id_username">' in html
    assert '<label for="id_password">' in html
    assert 'href="/accounts/password/reset/"' in html


def test_a_person_signs_in_and_lands_on_their_keys(alice):
    client = Client()
    response = sign_in(client, "alice", "alice-password")
    assert response.status_code == 302
    assert response["Location"] == "/"
    assert client.get("/").headers["Location"] == "/keys/"
    assert client.get("/keys/").status_code == 200


def test_a_wrong_password_is_refused_and_recorded_without_what_was_typed(alice):
    response = sign_in(Client(), "alice", "not-her-password")
    assert response.status_code == 200
    assert "Please enter a correct username and password" in response.content.decode()
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)
    assert event.subject == alice
    assert event.ip_address == "127.0.0.1"
    assert "not-her-password" not in str(event.detail)


def test_a_failed_login_for_an_unknown_username_is_recorded_without_the_username(db):
    sign_in(Client(), "hunter2-typed-in-the-wrong-box", "whatever")
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.LOGIN_FAILED)
    assert event.subject is None
    assert event.detail["known_username"] is False
    assert "hunter2" not in str(event.detail)


def test_it_returns_to_a_path_on_this_site_after_signing_in(alice):
    client = Client()
    page = client.get(LOGIN_URL + "?next=/apps/")
    assert 'name="next" value="/apps/"' in page.content.decode()
    response = sign_in(client, "alice", "alice-password", next="/apps/")
    assert response["Location"] == "/apps/"


def test_it_returns_to_the_pending_authorization_request_with_its_whole_query(alice, pkce_pair):
    client = Client()
    url = authorize_url(authorize_params(pkce_pair))
    to_login = client.get(url)
    assert to_login.status_code == 302
    assert to_login["Location"].startswith(LOGIN_URL + "?next=")
    login_page = client.get(to_login["Location"])
    assert "continue to the app" in login_page.content.decode()
    response = sign_in(client, "alice", "alice-password", next=url)
    assert response["Location"] == url
    assert client.get(url).status_code == 200  # the consent page


OFFSITE = [
    "https://evil.example/",
    "http://evil.example",
    "//evil.example",
    "///evil.example",
    "/\\evil.example",
    "\\\\evil.example",
    "/\\/evil.example",
    "https:evil.example",
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    "data:text/html,evil",
    " //evil.example",
    "\t//evil.example",
    "/\t/evil.example",
    "http://testserver/keys/",  # even our own host: only paths are accepted
    "evil.example",
]


@pytest.mark.parametrize("target", OFFSITE)
def test_it_refuses_to_send_anyone_offsite_after_signing_in(alice, target):
    client = Client()
    page = client.get(LOGIN_URL, {"next": target})
    assert "evil" not in page.content.decode()
    response = sign_in(client, "alice", "alice-password", next=target)
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_signed_in_person_visiting_the_login_page_is_sent_on_without_a_loop(alice_client):
    assert alice_client.get(LOGIN_URL).headers["Location"] == "/"
    assert alice_client.get(LOGIN_URL + "?next=/accounts/login/").headers["Location"] == "/"
    assert alice_client.get(LOGIN_URL + "?next=/apps/").headers["Location"] == "/apps/"


def test_signing_out_needs_a_post(alice_client):
    assert alice_client.get("/accounts/logout/").status_code == 405
    assert alice_client.get("/keys/").status_code == 200
    response = alice_client.post("/accounts/logout/")
    assert response.status_code == 302
    assert response["Location"] == LOGIN_URL
    assert alice_client.get("/keys/").status_code == 302


def test_pages_for_signed_in_people_send_others_to_the_login_page(db):
    client = Client()
    for path in ["/", "/keys/", "/apps/", "/accounts/password/change/"]:
        response = client.get(path)
        assert response.status_code == 302, path
        assert response["Location"].startswith(LOGIN_URL + "?next="), path


def test_the_navigation_links_every_self_service_page(alice_client):
    html = alice_client.get("/keys/").content.decode()
    for href in ['href="/keys/"', 'href="/apps/"', 'href="/accounts/password/change/"']:
        assert href in html
    assert 'action="/accounts/logout/"' in html
    assert 'href="/keys/" aria-current="page"' in html
