"""A key's limits hold wherever a key is checked: /v1/me, the token endpoint, the device flow, introspection.

And they are chosen on the consent page (both flows) for a new key, and shown on the connected-apps page.
"""

import base64
from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.test import Client
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.limits import KeyLimits
from accounts.models import ApiKey, AuditEvent
from accounts.services import key_create
from oauthprovider.introspection import resource_server_create
from oauthprovider.models import AuthorizationCode, Grant
from tests.conftest import (
    CLIENT_ID,
    authorize_params,
    authorize_url,
    consent_request_id,
    exchange,
    issue_code,
    query_of,
)
from tests.oauthprovider.test_device_flow import approve as device_approve
from tests.oauthprovider.test_device_flow import decide as device_decide
from tests.oauthprovider.test_device_flow import enter, poll, start


def expire(key: ApiKey) -> None:
    ApiKey.objects.filter(pk=key.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def me(raw: str, *, ip: str = "127.0.0.1"):
    return Client().get("/v1/me", HTTP_X_API_KEY=raw, REMOTE_ADDR=ip)


def limited_key(user, **limits) -> tuple[ApiKey, str]:
    return key_create(user=user, name="limited", context=SYSTEM, limits=KeyLimits(**limits))


def near(moment, expected, *, slack=timedelta(seconds=30)) -> bool:
    return abs(moment - expected) < slack


# --- /v1/me -------------------------------------------------------------------------------


def test_an_expired_key_is_refused_with_a_description_that_says_so(alice):
    key, raw = limited_key(alice, expires_at=timezone.now() + timedelta(days=1))
    assert me(raw).status_code == 200
    expire(key)
    response = me(raw)
    assert response.status_code == 401
    assert response.json() == {"error": "invalid_token", "error_description": "The API key has expired."}
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert 'error_description="The API key has expired."' in response["WWW-Authenticate"]
    assert raw not in response.content.decode() and raw not in response["WWW-Authenticate"]


def test_a_key_works_until_the_moment_it_expires(alice, monkeypatch):
    key, raw = limited_key(alice, expires_at=timezone.now() + timedelta(seconds=60))
    assert me(raw).status_code == 200
    later = timezone.now() + timedelta(seconds=61)
    monkeypatch.setattr(timezone, "now", lambda: later)
    assert me(raw).status_code == 401


def test_a_key_limited_to_networks_works_only_from_them(alice):
    key, raw = limited_key(alice, allowed_networks=("203.0.113.0/24", "2001:db8::/32"))
    assert me(raw, ip="203.0.113.77").status_code == 200
    assert me(raw, ip="2001:db8::1").status_code == 200
    response = me(raw, ip="198.51.100.1")
    assert response.status_code == 401
    body = response.json()
    assert body["error"] == "invalid_token"
    assert body["error_description"] == "The API key may not be used from this address (198.51.100.1)."
    assert "203.0.113.0" not in response.content.decode(), "the allowlist itself is not told"
    assert raw not in response.content.decode()


def test_the_address_is_the_one_a_trusted_proxy_reports(alice, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    key, raw = limited_key(alice, allowed_networks=("203.0.113.0/24",))
    assert Client().get("/v1/me", HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="203.0.113.5").status_code == 200
    assert Client().get("/v1/me", HTTP_X_API_KEY=raw, HTTP_X_FORWARDED_FOR="192.0.2.1").status_code == 401


def test_a_limited_key_is_checked_in_one_query(alice, django_assert_max_num_queries):
    key, raw = limited_key(
        alice, expires_at=timezone.now() + timedelta(days=1), allowed_networks=("127.0.0.0/8", "10.0.0.0/8")
    )
    me(raw)  # the first call records the use
    with django_assert_max_num_queries(1):
        assert me(raw).status_code == 200
    with django_assert_max_num_queries(1):
        assert me(raw, ip="192.0.2.1").status_code == 401


# --- The token endpoint and the device flow -----------------------------------------------


def test_a_code_whose_key_expired_meanwhile_is_an_invalid_grant(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair)
    expire(AuthorizationCode.objects.get().key)
    response = exchange(Client(), code, pkce_pair)
    assert response.status_code == 400
    assert response.json() == {"error": "invalid_grant", "error_description": "The key behind this code has expired."}
    assert AuthorizationCode.objects.get().redeemed_at is None


def test_a_device_whose_key_expired_before_it_picked_it_up_gets_invalid_grant(alice_client):
    started = start()
    device_approve(alice_client, started)
    expire(Grant.objects.get().key)
    response = poll(started)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_grant"
    assert "expired" in response.json()["error_description"]


# --- Introspection ------------------------------------------------------------------------


ISSUER = "http://127.0.0.1:8000"


def handed_to_the_server(key: ApiKey) -> ApiKey:
    """Introspection answers only about keys handed to the asking server: a grant naming its resource."""
    Grant.objects.create(user=key.user, client_id="app.example", key=key, scope="key:read", resources=[ISSUER])
    return key


@pytest.fixture
def introspect(db):
    _, client_id, secret = resource_server_create(name="mcp", resources=[ISSUER])
    auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()

    def ask(token: str, **extra):
        return Client().post(
            "/getKeys/introspect",
            urlencode({"token": token, **extra}),
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION=auth,
        )

    return ask


def test_introspection_reports_the_expiry_and_calls_an_expired_key_inactive(alice, introspect):
    expires_at = timezone.now() + timedelta(days=1)
    key, raw = limited_key(alice, expires_at=expires_at)
    handed_to_the_server(key)
    answer = introspect(raw).json()
    assert answer["active"] is True and answer["exp"] == int(expires_at.timestamp())
    expire(key)
    assert introspect(raw).json() == {"active": False}


def test_introspection_of_an_address_limited_key_needs_the_callers_address(alice, introspect):
    key, raw = limited_key(alice, allowed_networks=("203.0.113.0/24",))
    handed_to_the_server(key)
    assert introspect(raw).json() == {"active": False}, "without an address it fails closed"
    assert introspect(raw, client_address="203.0.113.9").json()["active"] is True
    assert introspect(raw, client_address="192.0.2.1").json() == {"active": False}
    unlimited, raw2 = key_create(user=alice, name="anywhere", context=SYSTEM)
    Grant.objects.filter(key=key).update(key=unlimited)
    assert introspect(raw2).json()["active"] is True
    assert "exp" not in introspect(raw2).json()


@pytest.mark.parametrize("address", ["localhost", "1.2.3.4.5", "<script>", "x" * 200])
def test_a_client_address_that_is_not_an_ip_is_an_invalid_request(alice_key, introspect, address):
    response = introspect(alice_key[1], client_address=address)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"


# --- The consent page -----------------------------------------------------------------------


def consent(client, params: dict, **data):
    page = client.get(authorize_url(params))
    assert page.status_code == 200, page.content[:300]
    return page, client.post("/getKeys/authorize", {"request": consent_request_id(page), **data})


def test_the_consent_page_offers_limits_for_the_new_key_with_the_operator_default(alice_client, pkce_pair, settings):
    settings.API_KEY_DEFAULT_EXPIRY_DAYS = 90
    html = alice_client.get(authorize_url(authorize_params(pkce_pair))).content.decode()
    assert 'data-testid="new-key-limits"' in html
    assert '<option value="90" selected>90 days</option>' in html
    assert 'name="allowed_networks"' in html and 'name="expiry_date"' in html


def test_a_new_key_for_an_app_gets_the_default_expiry_when_nothing_is_chosen(alice_client, pkce_pair, settings):
    settings.API_KEY_DEFAULT_EXPIRY_DAYS = 90
    _, response = consent(alice_client, authorize_params(pkce_pair), decision="allow", key="new")
    assert response.status_code == 302
    key = Grant.objects.get().key
    assert near(key.expires_at, timezone.now() + timedelta(days=90))


def test_the_limits_chosen_on_the_consent_page_go_on_the_new_key(alice_client, pkce_pair):
    _, response = consent(
        alice_client,
        authorize_params(pkce_pair),
        decision="allow",
        key="new",
        expiry="7",
        allowed_networks="127.0.0.1, 203.0.113.0/24",
    )
    assert response.status_code == 302
    key = Grant.objects.get().key
    assert near(key.expires_at, timezone.now() + timedelta(days=7))
    assert key.allowed_networks == ["127.0.0.1/32", "203.0.113.0/24"]
    raw = exchange(Client(), query_of(response["Location"])["code"][0], pkce_pair).json()["access_token"]
    assert me(raw, ip="127.0.0.1").status_code == 200
    assert me(raw, ip="192.0.2.1").status_code == 401
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.KEY_CREATED)
    assert event.detail["allowed_networks"] == key.allowed_networks


def test_unusable_limits_reshow_the_consent_page_and_write_nothing(alice_client, pkce_pair):
    page, response = consent(
        alice_client, authorize_params(pkce_pair), decision="allow", key="new", allowed_networks="10.1.2.3/8"
    )
    assert response.status_code == 400
    assert "host bits" in response.content.decode()
    assert 'name="request" value="' + consent_request_id(page) in response.content.decode()
    assert not ApiKey.objects.exists() and not Grant.objects.exists()
    # The same page can still be answered once the list is fixed.
    response = alice_client.post(
        "/getKeys/authorize",
        {"request": consent_request_id(page), "decision": "allow", "key": "new", "allowed_networks": "10.0.0.0/8"},
    )
    assert response.status_code == 302


def test_a_typo_in_the_limits_never_stands_in_the_way_of_deny(alice_client, pkce_pair):
    _, response = consent(
        alice_client, authorize_params(pkce_pair), decision="deny", key="new", allowed_networks="garbage"
    )
    assert response.status_code == 302
    assert query_of(response["Location"])["error"] == ["access_denied"]


def test_limits_are_ignored_when_an_existing_key_is_chosen(alice_client, alice_key, pkce_pair):
    key, _ = alice_key
    _, response = consent(
        alice_client, authorize_params(pkce_pair), decision="allow", key=str(key.pk), allowed_networks="garbage"
    )
    assert response.status_code == 302
    key.refresh_from_db()
    assert key.expires_at is None and key.allowed_networks == []


def test_an_expired_key_is_neither_offered_nor_accepted(alice, alice_client, pkce_pair):
    key, _ = limited_key(alice, expires_at=timezone.now() + timedelta(days=1))
    expire(key)
    page, response = consent(alice_client, authorize_params(pkce_pair), decision="allow", key=str(key.pk))
    assert f'value="{key.pk}"' not in page.content.decode()
    assert response.status_code == 400
    assert "Choose one of your active keys" in response.content.decode()
    assert not Grant.objects.exists()


def test_the_consent_page_shows_the_limits_of_existing_keys(alice, alice_client, pkce_pair):
    limited_key(alice, expires_at=timezone.now() + timedelta(days=3), allowed_networks=("10.0.0.0/8",))
    html = alice_client.get(authorize_url(authorize_params(pkce_pair))).content.decode()
    existing = html.split("limited <code>", 1)[1].split("</label>", 1)[0]
    assert "Expires" in existing and "Only from <code>10.0.0.0/8</code>" in existing


def test_the_device_consent_page_sets_the_limits_of_the_new_key_too(alice_client):
    started = start()
    page = enter(alice_client, started["user_code"])
    assert 'data-testid="new-key-limits"' in page.content.decode()
    done = device_decide(alice_client, page)  # decision allow, key new
    assert done.status_code == 200
    key = Grant.objects.get().key
    assert key.expires_at is not None

    started = start(client_id="ci-runner")
    page = enter(alice_client, started["user_code"])
    response = alice_client.post(
        "/getKeys/device",
        {
            "request": consent_request_id(page),
            "decision": "allow",
            "key": "new",
            "expiry": "never",
            "allowed_networks": "192.0.2.0/24",
        },
    )
    assert response.status_code == 200
    key = Grant.objects.get(client_id="unverified:ci-runner").key
    assert key.expires_at is None and key.allowed_networks == ["192.0.2.0/24"]


def test_the_device_consent_page_refuses_unusable_limits_with_a_form_error(alice_client):
    started = start()
    page = enter(alice_client, started["user_code"])
    response = alice_client.post(
        "/getKeys/device",
        {"request": consent_request_id(page), "decision": "allow", "key": "new", "expiry": "date"},
    )
    assert response.status_code == 400
    assert "Choose the date" in response.content.decode()
    assert not Grant.objects.exists()


# --- Shown on the connected-apps page and in admin -------------------------------------------------


def test_the_connected_apps_page_shows_the_keys_limits_and_an_expired_key(alice_client, pkce_pair):
    consent(alice_client, authorize_params(pkce_pair), decision="allow", key="new", expiry="30")
    html = alice_client.get("/apps/").content.decode()
    assert "Expires" in html and "Any address" in html
    expire(Grant.objects.get(client_id=CLIENT_ID).key)
    html = alice_client.get("/apps/").content.decode()
    assert '<span class="status-expired">expired</span>' in html
    assert '<span class="status-expired">Expired</span>' in html
