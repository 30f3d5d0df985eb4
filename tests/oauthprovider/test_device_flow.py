"""The device flow (RFC 8628) through HTTP, as the reference CLI drives it (DESIGN.md "Device flow")."""

import re
from datetime import timedelta
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent
from accounts.services import key_create, key_revoke
from oauthprovider.models import DeviceAuthorization, Grant
from tests.conftest import consent_request_id, make_user

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
ISSUER = "http://127.0.0.1:8000"
USER_CODE = re.compile(r"[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}")
FORM = "application/x-www-form-urlencoded"


def post_form(path: str, data: dict, **headers):
    """As a device posts: form-encoded (RFC 8628 section 3.1)."""
    return Client().post(path, urlencode(data, doseq=True), content_type=FORM, **headers)


def start(client_id: str = "localhost", **extra) -> dict:
    response = post_form("/getKeys/device/code", {"client_id": client_id, "scope": "key:read", **extra})
    assert response.status_code == 200, response.content
    return response.json()


def poll(started: dict, *, client_id: str = "localhost", **overrides):
    data = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": client_id, **overrides}
    return post_form("/getKeys/token", data)


def error_of(response) -> str:
    assert response.status_code == 400, response.content
    assert response["Cache-Control"] == "no-store"
    return response.json()["error"]


def enter(client: Client, user_code: str):
    return client.post("/getKeys/device", {"user_code": user_code})


def decide(client: Client, page, decision: str = "allow", key: str = "new"):
    return client.post("/getKeys/device", {"request": consent_request_id(page), "decision": decision, "key": key})


def approve(client: Client, started: dict, **kwargs):
    page = enter(client, started["user_code"])
    assert page.status_code == 200, page.content[:500]
    done = decide(client, page, **kwargs)
    assert done.status_code == 200, done.content[:500]
    return done


@pytest.fixture
def started(db) -> dict:
    return start()


# --- The device authorization endpoint (section 3.1-3.2) ------------------------------------


def test_a_device_gets_codes_and_where_to_send_its_person(started):
    assert len(started["device_code"]) >= 43
    assert USER_CODE.fullmatch(started["user_code"])
    assert started["verification_uri"] == f"{ISSUER}/getKeys/device"
    complete = urlsplit(started["verification_uri_complete"])
    assert f"{complete.scheme}://{complete.netloc}{complete.path}" == started["verification_uri"]
    assert parse_qs(complete.query) == {"user_code": [started["user_code"]]}
    assert started["expires_in"] == 600
    assert started["interval"] == 5


def test_the_device_endpoint_answers_cors_and_is_never_cached(db):
    response = post_form("/getKeys/device/code", {"client_id": "localhost"}, HTTP_ORIGIN="https://app.example")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Cache-Control"] == "no-store"
    preflight = Client().options("/getKeys/device/code", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
    assert preflight.status_code == 204
    assert "POST" in preflight["Access-Control-Allow-Methods"]


def test_only_hashes_of_the_codes_are_stored(started):
    row = DeviceAuthorization.objects.get()
    stored = " ".join(str(value) for value in row.__dict__.values())
    assert started["device_code"] not in stored
    assert started["user_code"].replace("-", "") not in stored


@pytest.mark.parametrize(
    "data, error",
    [
        ({}, "invalid_request"),
        ({"client_id": "a\u202eb"}, "invalid_request"),
        ({"client_id": "x" * 101}, "invalid_request"),
        ({"client_id": "localhost", "scope": "admin"}, "invalid_scope"),
        ({"client_id": ["a", "b"]}, "invalid_request"),
        ({"client_id": "localhost", "resource": "not-a-uri"}, "invalid_target"),
    ],
)
def test_a_bad_device_request_is_a_json_error(db, data, error):
    assert error_of(post_form("/getKeys/device/code", data)) == error


def test_the_device_endpoint_takes_only_form_posts(db):
    assert Client().get("/getKeys/device/code").status_code == 405
    response = Client().post("/getKeys/device/code", '{"client_id": "x"}', content_type="application/json")
    assert error_of(response) == "invalid_request"


def test_one_address_cannot_start_device_sign_ins_without_end(db, settings):
    settings.OAUTH_DEVICE_REQUESTS_PER_ADDRESS = 3
    for _ in range(3):
        start()
    response = post_form("/getKeys/device/code", {"client_id": "localhost"})
    assert response.status_code == 429
    assert response.json()["error"] == "slow_down"
    assert int(response["Retry-After"]) > 0
    assert DeviceAuthorization.objects.count() == 3


def test_the_metadata_advertises_the_device_flow(db):
    metadata = Client().get("/.well-known/oauth-authorization-server").json()
    assert metadata["device_authorization_endpoint"] == f"{ISSUER}/getKeys/device/code"
    assert DEVICE_GRANT in metadata["grant_types_supported"]


def test_operators_can_turn_the_device_flow_off(db, settings, alice_client):
    settings.OAUTH_DEVICE_FLOW_ENABLED = False
    metadata = Client().get("/.well-known/oauth-authorization-server").json()
    assert "device_authorization_endpoint" not in metadata
    assert DEVICE_GRANT not in metadata["grant_types_supported"]
    assert post_form("/getKeys/device/code", {"client_id": "localhost"}).status_code == 404
    assert alice_client.get("/getKeys/device").status_code == 404
    response = poll({"device_code": "x" * 43})
    assert error_of(response) == "unsupported_grant_type"


# --- Polling (section 3.4-3.5) ---------------------------------------------------------------


def test_until_the_person_acts_the_device_hears_authorization_pending(started):
    assert error_of(poll(started)) == "authorization_pending"


def test_polling_faster_than_the_interval_is_slow_down_and_the_interval_grows_by_5(started, clock):
    assert error_of(poll(started)) == "authorization_pending"
    assert error_of(poll(started)) == "slow_down"
    assert DeviceAuthorization.objects.get().interval == 10
    clock.advance(6)  # enough for the old interval, not the new one
    assert error_of(poll(started)) == "slow_down"
    assert DeviceAuthorization.objects.get().interval == 15
    clock.advance(15)
    assert error_of(poll(started)) == "authorization_pending"
    clock.advance(15)
    assert error_of(poll(started)) == "authorization_pending"


def test_a_device_polling_at_the_interval_never_hears_slow_down(started, clock):
    for _ in range(5):
        assert error_of(poll(started)) == "authorization_pending"
        clock.advance(started["interval"])


def test_a_pending_poll_is_one_indexed_read_and_no_write(started, clock, django_assert_num_queries):
    poll(started)
    clock.advance(started["interval"])
    with django_assert_num_queries(1) as captured:
        assert error_of(poll(started)) == "authorization_pending"
    sql = captured.captured_queries[0]["sql"]
    assert sql.lstrip().upper().startswith("SELECT") and "device_code_hash" in sql


def test_an_unknown_device_code_is_invalid_grant(db):
    assert error_of(poll({"device_code": "nope" * 11})) == "invalid_grant"


def test_another_client_id_cannot_poll_the_device_code(started, alice_client):
    approve(alice_client, started)
    assert error_of(poll(started, client_id="findall-cli")) == "invalid_grant"
    assert poll(started).status_code == 200  # the device itself still gets it


@pytest.mark.parametrize("missing", ["device_code", "client_id"])
def test_a_poll_missing_a_parameter_is_invalid_request(started, missing):
    data = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": "localhost"}
    del data[missing]
    assert error_of(post_form("/getKeys/token", data)) == "invalid_request"


def test_an_expired_device_code_is_expired_token(started):
    DeviceAuthorization.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert error_of(poll(started)) == "expired_token"


# --- The person's page (section 3.3) ----------------------------------------------------------


def test_the_verification_page_asks_an_anonymous_person_to_sign_in_first(started):
    response = Client().get("/getKeys/device?" + urlsplit(started["verification_uri_complete"]).query)
    assert response.status_code == 302
    login = urlsplit(response["Location"])
    assert login.path == "/accounts/login/"
    assert parse_qs(login.query)["next"] == ["/getKeys/device?" + urlsplit(started["verification_uri_complete"]).query]


def test_the_verification_page_offers_a_form_to_type_the_code(alice_client):
    page = alice_client.get("/getKeys/device")
    assert page.status_code == 200
    assert b'name="user_code"' in page.content


@pytest.mark.parametrize("typing", [str.lower, lambda code: code.replace("-", ""), lambda code: f"  {code} "])
def test_the_code_may_be_typed_in_any_case_with_or_without_the_dash(started, alice_client, typing):
    page = enter(alice_client, typing(started["user_code"]))
    assert page.status_code == 200
    assert b'data-testid="device-notice"' in page.content
    assert started["user_code"].encode() in page.content


def test_following_verification_uri_complete_shows_the_consent_page(started, alice_client):
    page = alice_client.get("/getKeys/device?" + urlsplit(started["verification_uri_complete"]).query)
    assert page.status_code == 200
    text = page.content.decode()
    assert 'data-testid="device-notice"' in text
    assert "a device of your own" in text
    assert "Create a new key for localhost" in text
    assert page["Referrer-Policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]


def test_the_device_is_named_as_what_it_calls_itself_never_as_a_website(db, alice_client):
    started = start(client_id="github.com")
    text = enter(alice_client, started["user_code"]).content.decode()
    assert 'data-testid="client-self-name">github.com<' in text
    assert 'class="client-host"' not in text
    assert "A device that calls itself" in text


def test_allow_hands_the_key_to_the_device_exactly_once(started, alice, alice_client):
    done = approve(alice_client, started)
    assert b'data-testid="device-result"' in done.content
    response = poll(started)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "scope"}
    assert body["token_type"] == "Bearer" and body["scope"] == "key:read"
    key = ApiKey.objects.get(user=alice)
    assert key.plaintext() == body["access_token"]
    assert Client().get("/v1/me", HTTP_X_API_KEY=body["access_token"]).json()["user"]["username"] == "alice"
    assert error_of(poll(started)) == "invalid_grant"
    assert ApiKey.objects.count() == 1, "one key per device code"


def test_an_existing_key_can_be_chosen_for_the_device(started, alice_client, alice_key):
    key, raw = alice_key
    approve(alice_client, started, key=str(key.pk))
    assert poll(started).json()["access_token"] == raw
    assert ApiKey.objects.count() == 1


def test_deny_tells_the_device_access_denied_and_kills_the_code(started, alice_client):
    done = approve(alice_client, started, decision="deny")
    assert b"Denied" in done.content
    assert error_of(poll(started)) == "access_denied"
    assert enter(alice_client, started["user_code"]).status_code == 400
    assert not ApiKey.objects.exists()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_DENIED, client_id="localhost").exists()


def test_a_used_code_cannot_be_entered_again(started, alice_client, bob):
    approve(alice_client, started)
    poll(started)
    bob_client = Client()
    bob_client.force_login(bob)
    response = enter(bob_client, started["user_code"])
    assert response.status_code == 400
    assert b'data-testid="device-error"' in response.content


def test_an_approved_code_cannot_be_approved_twice(started, alice_client):
    page = enter(alice_client, started["user_code"])
    second_tab = enter(alice_client, started["user_code"])
    assert decide(alice_client, page).status_code == 200
    assert decide(alice_client, second_tab).status_code == 400
    assert ApiKey.objects.count() == 1


def test_an_expired_code_cannot_be_entered(started, alice_client):
    DeviceAuthorization.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert enter(alice_client, started["user_code"]).status_code == 400


def test_a_code_that_expired_on_the_consent_page_cannot_be_approved(started, alice_client):
    page = enter(alice_client, started["user_code"])
    DeviceAuthorization.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert decide(alice_client, page).status_code == 400
    assert not ApiKey.objects.exists()
    assert error_of(poll(started)) == "expired_token"


def test_an_approval_not_picked_up_in_time_expires(started, alice_client):
    approve(alice_client, started)
    DeviceAuthorization.objects.update(approved_at=timezone.now() - timedelta(seconds=61))
    assert error_of(poll(started)) == "expired_token"


def test_a_key_revoked_before_the_device_picks_it_up_is_not_handed_out(started, alice_client):
    approve(alice_client, started)
    key_revoke(key=ApiKey.objects.get(), context=SYSTEM)
    assert error_of(poll(started)) == "invalid_grant"


def test_the_consent_post_refuses_a_key_that_is_not_the_persons(started, alice_client, bob):
    bobs_key, _ = key_create(user=bob, name="bobs", context=SYSTEM)
    page = enter(alice_client, started["user_code"])
    response = decide(alice_client, page, key=str(bobs_key.pk))
    assert response.status_code == 400
    assert error_of(poll(started)) == "authorization_pending"


def test_the_consent_post_needs_the_persons_own_pending_request(started, alice_client, bob):
    page = enter(alice_client, started["user_code"])
    alice_client.force_login(bob)
    assert decide(alice_client, page).status_code == 400
    assert error_of(poll(started)) == "authorization_pending"


def test_the_consent_post_is_csrf_protected(started, alice):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = browser.get("/getKeys/device?" + urlsplit(started["verification_uri_complete"]).query)
    forged = browser.post("/getKeys/device", {"request": consent_request_id(page), "decision": "allow", "key": "new"})
    assert forged.status_code == 403
    assert error_of(poll(started)) == "authorization_pending"


# --- Guessing user codes (section 5.1) --------------------------------------------------------


def test_wrong_codes_are_throttled_per_person(started, alice_client, settings):
    settings.OAUTH_USER_CODE_FAILURES_ALLOWED = 3
    for guess in ("BBBB-BBBB", "CCCC-CCCC", "not a code"):
        assert enter(alice_client, guess).status_code == 400
    throttled = enter(alice_client, started["user_code"])
    assert throttled.status_code == 429
    assert int(throttled["Retry-After"]) > 0
    assert error_of(poll(started)) == "authorization_pending"


def test_wrong_codes_are_throttled_per_address_across_people(started, db, settings):
    settings.OAUTH_USER_CODE_FAILURES_ALLOWED = 3
    for index in range(3):
        guesser = Client()
        guesser.force_login(make_user(f"guesser{index}"))
        assert enter(guesser, "BBBB-BBBB").status_code == 400
    another = Client()
    another.force_login(make_user("another"))
    assert enter(another, started["user_code"]).status_code == 429


# --- Grants, audit, connected apps --------------------------------------------------------------


def test_a_device_grant_is_recorded_audited_and_listed_like_any_other(started, alice, alice_client):
    approve(alice_client, started)
    poll(started)
    grant = Grant.objects.get(user=alice)
    assert grant.client_id == "localhost"
    assert grant.is_active
    kinds = set(AuditEvent.objects.filter(client_id="localhost").values_list("kind", flat=True))
    assert {AuditEvent.Kind.CONSENT_GRANTED, AuditEvent.Kind.TOKEN_ISSUED} <= kinds
    granted = AuditEvent.objects.get(kind=AuditEvent.Kind.CONSENT_GRANTED)
    assert granted.detail["flow"] == "device"
    assert b"localhost" in alice_client.get("/apps/").content


def test_a_device_calling_itself_like_a_website_gets_its_own_grant(alice, alice_client, pkce_pair):
    from tests.conftest import issue_code

    issue_code(alice_client, pkce_pair)  # the website yourapp.com
    started = start(client_id="yourapp.com")
    approve(alice_client, started)
    recorded = set(Grant.objects.filter(user=alice).values_list("client_id", flat=True))
    assert recorded == {"yourapp.com", "unverified:yourapp.com"}
    apps = alice_client.get("/apps/").content.decode()
    assert "name not verified" in apps


def test_revoking_the_device_grant_revokes_the_key_it_got(started, alice, alice_client):
    approve(alice_client, started)
    raw = poll(started).json()["access_token"]
    grant = Grant.objects.get(user=alice)
    alice_client.post(f"/apps/{grant.pk}/revoke/")
    assert Client().get("/v1/me", HTTP_X_API_KEY=raw).status_code == 401


def test_the_admin_lists_device_sign_ins_without_their_codes(started, alice_client, admin_client):
    approve(alice_client, started)
    page = admin_client.get("/admin/oauthprovider/deviceauthorization/").content.decode()
    assert "localhost" in page and "approved" in page
    assert started["device_code"] not in page
    assert started["user_code"] not in page
