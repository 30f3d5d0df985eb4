"""POST /getKeys/token through HTTP: the exchange, every error, replay, throttling, CORS."""

from datetime import timedelta
from urllib.parse import urlencode

import pytest
from django.db import connection
from django.test import Client
from django.utils import timezone

from accounts.models import ApiKey, AuditEvent
from oauthprovider.models import AuthorizationCode, Grant
from oauthprovider.protocol import hash_secret
from tests.conftest import CLIENT_ID, REDIRECT_URI, PkcePair, exchange, issue_code, new_pkce_pair, token_request

FORM = "application/x-www-form-urlencoded"
RFC7636 = PkcePair(
    verifier="dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
)


@pytest.fixture
def app() -> Client:
    """The client app: no cookies of the user."""
    return Client()


@pytest.fixture
def code(alice_client, pkce_pair) -> str:
    return issue_code(alice_client, pkce_pair)


def form(**data) -> dict[str, str]:
    base = {
        "grant_type": "authorization_code",
        "code": "x",
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": "v" * 43,
    }
    base.update(data)
    return {k: v for k, v in base.items() if v is not None}


def assert_error(response, error: str, status: int = 400) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"] == "application/json"
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"
    body = response.json()
    assert set(body) == {"error", "error_description"}
    assert body["error"] == error
    return body


def me(raw_key: str):
    return Client().get("/v1/me", HTTP_X_API_KEY=raw_key)


# --- Success ----------------------------------------------------------------------------------


def test_a_valid_code_is_exchanged_for_the_key(app, code, pkce_pair, alice):
    response = exchange(app, code, pkce_pair)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    body = response.json()
    assert set(body) == {"access_token", "token_type", "scope"}
    assert body["token_type"] == "Bearer"
    assert body["scope"] == "key:read"
    key = ApiKey.objects.get(user=alice)
    assert key.plaintext() == body["access_token"]


def test_a_successful_exchange_is_never_cached(app, code, pkce_pair):
    response = exchange(app, code, pkce_pair)
    assert response["Cache-Control"] == "no-store"
    assert response["Pragma"] == "no-cache"


def test_the_rfc_7636_appendix_b_pair_works_end_to_end(alice_client, app):
    code = issue_code(alice_client, RFC7636)
    assert AuthorizationCode.objects.get().code_challenge == RFC7636.challenge
    assert exchange(app, code, RFC7636).status_code == 200


def test_a_charset_parameter_on_the_form_content_type_is_accepted(app, code, pkce_pair):
    data = form(code=code, code_verifier=pkce_pair.verifier)
    response = app.post("/getKeys/token", urlencode(data), content_type=FORM + "; charset=UTF-8")
    assert response.status_code == 200


def test_a_successful_exchange_needs_at_most_four_queries(app, code, pkce_pair, django_assert_max_num_queries):
    with django_assert_max_num_queries(4):
        response = exchange(app, code, pkce_pair)
    assert response.status_code == 200


def _indexed_columns(table: str) -> list[list[str]]:
    with connection.cursor() as cursor:
        constraints = connection.introspection.get_constraints(cursor, table)
    return [c["columns"] for c in constraints.values() if c["index"] or c["unique"]]


@pytest.mark.django_db
def test_no_index_covers_what_the_redemption_changes():
    # An UPDATE of an unindexed column can be heap-only on PostgreSQL: it
    # writes none of the table's indexes (docs/benchmarks.md).
    assert not [columns for columns in _indexed_columns("oauthprovider_authorizationcode") if "redeemed_at" in columns]


@pytest.mark.django_db
def test_the_audit_log_has_no_index_that_another_one_already_leads_with():
    indexes = _indexed_columns("accounts_auditevent")
    single = [columns[0] for columns in indexes if len(columns) == 1]
    leading = {columns[0] for columns in indexes if len(columns) > 1}
    assert not set(single) & leading


def test_the_code_is_long_and_only_its_hash_is_stored(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair)
    assert len(code) >= 43  # 256 bits in base64url
    stored = AuthorizationCode.objects.get()
    assert stored.code_hash == hash_secret(code)
    assert code not in {str(v) for v in AuthorizationCode.objects.values().get().values()}


def test_each_authorization_gets_a_different_code(alice_client, pkce_pair):
    assert issue_code(alice_client, pkce_pair) != issue_code(alice_client, pkce_pair)


# --- invalid_request ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["grant_type", "code", "client_id", "redirect_uri"])
def test_a_missing_parameter_is_an_invalid_request(app, name):
    assert_error(token_request(app, **form(**{name: None})), "invalid_request")


@pytest.mark.parametrize("name", ["grant_type", "code", "client_id", "redirect_uri", "code_verifier"])
def test_a_repeated_parameter_is_an_invalid_request(app, code, pkce_pair, name):
    data = form(code=code, code_verifier=pkce_pair.verifier)
    body = urlencode(data) + "&" + urlencode({name: data[name]})
    assert_error(app.post("/getKeys/token", body, content_type=FORM), "invalid_request")
    # ... and the code is still good.
    assert exchange(app, code, pkce_pair).status_code == 200


def test_a_json_body_is_an_invalid_request(app, code, pkce_pair):
    data = form(code=code, code_verifier=pkce_pair.verifier)
    assert_error(app.post("/getKeys/token", data, content_type="application/json"), "invalid_request")


def test_a_multipart_body_is_an_invalid_request(app, code, pkce_pair):
    assert_error(app.post("/getKeys/token", form(code=code, code_verifier=pkce_pair.verifier)), "invalid_request")


@pytest.mark.parametrize("content_type", ["text/plain", "application/xml", "", "application/x-www-form-urlencodedx"])
def test_a_body_that_is_not_form_encoded_is_an_invalid_request(app, code, pkce_pair, content_type):
    body = urlencode(form(code=code, code_verifier=pkce_pair.verifier))
    assert_error(app.generic("POST", "/getKeys/token", body, content_type=content_type), "invalid_request")


@pytest.mark.parametrize("charset", ["utf-16", "latin-1", "us-ascii", "utf8", "hex", "no-such-charset"])
def test_a_form_body_in_another_charset_is_an_invalid_request(app, code, pkce_pair, charset):
    body = urlencode(form(code=code, code_verifier=pkce_pair.verifier)).encode()
    response = app.generic("POST", "/getKeys/token", body, content_type=f"{FORM}; charset={charset}")
    assert_error(response, "invalid_request")


@pytest.mark.parametrize("charset", ["utf-8", "UTF-8"])
def test_a_form_body_declared_utf_8_is_exchanged(app, code, pkce_pair, charset):
    body = urlencode(form(code=code, code_verifier=pkce_pair.verifier)).encode()
    response = app.generic("POST", "/getKeys/token", body, content_type=f"{FORM}; charset={charset}")
    assert response.status_code == 200


def test_query_string_parameters_are_not_read(app, code, pkce_pair):
    query = urlencode(form(code=code, code_verifier=pkce_pair.verifier))
    response = app.post("/getKeys/token?" + query, "", content_type=FORM)
    assert_error(response, "invalid_request")


# --- unsupported_grant_type -------------------------------------------------------------------------


@pytest.mark.parametrize("grant_type", ["client_credentials", "refresh_token", "password", "implicit"])
def test_another_grant_type_is_unsupported(app, code, pkce_pair, grant_type):
    response = exchange(app, code, pkce_pair, grant_type=grant_type)
    assert_error(response, "unsupported_grant_type")


# --- invalid_grant ------------------------------------------------------------------------------------


def test_an_unknown_code_is_an_invalid_grant(app, code, pkce_pair):
    assert_error(exchange(app, code + "x", pkce_pair), "invalid_grant")


def test_an_expired_code_is_an_invalid_grant(app, code, pkce_pair):
    AuthorizationCode.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
    assert_error(exchange(app, code, pkce_pair), "invalid_grant")


def test_codes_expire_after_the_configured_lifetime(alice_client, app, pkce_pair, settings):
    settings.OAUTH_CODE_TTL_SECONDS = 0
    code = issue_code(alice_client, pkce_pair)
    assert_error(exchange(app, code, pkce_pair), "invalid_grant")


def test_codes_live_sixty_seconds_by_default(alice_client, pkce_pair):
    issue_code(alice_client, pkce_pair)
    stored = AuthorizationCode.objects.get()
    assert stored.expires_at - stored.created_at == timedelta(seconds=60)


def test_it_rejects_a_reused_code(app, code, pkce_pair):
    assert exchange(app, code, pkce_pair).status_code == 200
    assert_error(exchange(app, code, pkce_pair), "invalid_grant")


def test_a_code_for_another_client_is_an_invalid_grant(app, code, pkce_pair):
    assert_error(exchange(app, code, pkce_pair, client_id="otherapp.com"), "invalid_grant")


def test_the_client_id_must_be_identical_to_the_authorization_request(alice_client, app, pkce_pair):
    code = issue_code(alice_client, pkce_pair, client_id="YourApp.com")
    assert_error(exchange(app, code, pkce_pair, client_id="yourapp.com"), "invalid_grant")
    assert exchange(app, code, pkce_pair, client_id="YourApp.com").status_code == 200


@pytest.mark.parametrize(
    "redirect_uri",
    ["https://yourapp.com/other", "https://yourapp.com/callback/", "https://YOURAPP.com/callback", REDIRECT_URI + "?"],
)
def test_a_code_for_another_redirect_uri_is_an_invalid_grant(app, code, pkce_pair, redirect_uri):
    assert_error(exchange(app, code, pkce_pair, redirect_uri=redirect_uri), "invalid_grant")


def test_a_wrong_verifier_is_an_invalid_grant(app, code, pkce_pair):
    assert_error(exchange(app, code, pkce_pair, code_verifier=new_pkce_pair().verifier), "invalid_grant")


def test_a_missing_verifier_is_an_invalid_grant(app, code, pkce_pair):
    assert_error(exchange(app, code, pkce_pair, code_verifier=None), "invalid_grant")


def test_the_challenge_instead_of_the_verifier_is_an_invalid_grant(app, code, pkce_pair):
    assert_error(exchange(app, code, pkce_pair, code_verifier=pkce_pair.challenge), "invalid_grant")


@pytest.mark.parametrize("verifier", ["short", "v" * 256, "v" * 42 + "+"])
def test_a_malformed_verifier_is_refused(app, code, pkce_pair, verifier):
    response = exchange(app, code, pkce_pair, code_verifier=verifier)
    assert response.status_code == 400
    assert response.json()["error"] in ("invalid_grant", "invalid_request")


def test_a_code_whose_key_was_revoked_is_an_invalid_grant(app, code, pkce_pair):
    ApiKey.objects.update(revoked_at=timezone.now())
    assert_error(exchange(app, code, pkce_pair), "invalid_grant")


def test_a_code_whose_grant_was_revoked_is_an_invalid_grant(app, code, pkce_pair):
    Grant.objects.update(revoked_at=timezone.now())
    assert_error(exchange(app, code, pkce_pair), "invalid_grant")


@pytest.mark.parametrize(
    "mistake",
    [
        {"client_id": "otherapp.com"},
        {"redirect_uri": "https://yourapp.com/other"},
        {"code_verifier": "w" * 43},
        {"code_verifier": None},
    ],
)
def test_a_failed_validation_does_not_use_the_code_up(app, code, pkce_pair, mistake):
    assert_error(exchange(app, code, pkce_pair, **mistake), "invalid_grant")
    assert AuthorizationCode.objects.get().redeemed_at is None
    assert exchange(app, code, pkce_pair).status_code == 200


def test_wrong_verifiers_from_anyone_never_make_the_code_unusable(app, code, pkce_pair):
    """Issue #13 item 3: five wrong verifiers from whoever holds a leaked code used to kill it for its owner."""
    for n in range(10):
        response = post_from(f"203.0.113.{n}", **form(code=code, code_verifier="w" * 43))
        assert_error(response, "invalid_grant")
    assert AuthorizationCode.objects.get().failed_attempts == 10  # counted, shown in admin
    assert exchange(app, code, pkce_pair).status_code == 200


# --- Throttling per address ----------------------------------------------------------------------------


def post_from(address: str, **data):
    return Client().post("/getKeys/token", urlencode(data), content_type=FORM, REMOTE_ADDR=address)


@pytest.mark.usefixtures("counter_store")
def test_too_many_failures_from_one_address_are_throttled(settings, db):
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 3
    settings.OAUTH_TOKEN_FAILURE_WINDOW_SECONDS = 120
    for _ in range(3):
        assert_error(post_from("203.0.113.9", **form(code="guess")), "invalid_grant")
    response = post_from("203.0.113.9", **form(code="guess"))
    assert response.status_code == 429
    assert response["Retry-After"] == "120"
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "error" in response.json()


@pytest.mark.usefixtures("counter_store")
def test_a_throttled_address_still_redeems_a_valid_code(alice_client, pkce_pair, settings):
    """Issue #13 item 3: behind a proxy everyone shares one address; another's failures must not refuse a code."""
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 2
    code = issue_code(alice_client, pkce_pair)
    for _ in range(5):
        post_from("203.0.113.9", **form(code="guess"))
    wrong = post_from("203.0.113.9", **form(code=code, code_verifier="w" * 43))
    assert wrong.status_code == 429 and wrong.json()["error"] == "slow_down"  # wrong ones are still slowed...
    assert "Retry-After" in wrong
    valid = post_from("203.0.113.9", **form(code=code, code_verifier=pkce_pair.verifier))
    assert valid.status_code == 200  # ...the right one goes through
    assert valid.json()["access_token"].startswith("kg_")


@pytest.mark.usefixtures("counter_store")
def test_failures_from_an_ipv6_network_count_as_one_address(settings, db):
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 3
    for n in range(3):
        assert_error(post_from(f"2001:db8:5:6::{n + 1}", **form(code="guess")), "invalid_grant")
    assert post_from("2001:db8:5:6:abcd::1", **form(code="guess")).status_code == 429
    assert_error(post_from("2001:db8:5:7::1", **form(code="guess")), "invalid_grant")


def test_requests_without_a_usable_address_do_not_throttle_each_other(settings, db):
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 3
    for _ in range(6):
        assert_error(post_from("", **form(code="guess")), "invalid_grant")


def test_malformed_requests_do_not_count_towards_the_throttle(settings, db):
    settings.OAUTH_TOKEN_FAILURES_PER_ADDRESS = 2
    for _ in range(5):
        assert_error(post_from("203.0.113.9", **form(grant_type=None)), "invalid_request")
    assert_error(post_from("203.0.113.9", **form(code="guess")), "invalid_grant")


# --- Replay ------------------------------------------------------------------------------------------


def test_a_valid_replay_revokes_the_grant_and_the_key_it_created(app, code, pkce_pair, alice):
    raw = exchange(app, code, pkce_pair).json()["access_token"]
    assert me(raw).status_code == 200

    assert_error(exchange(app, code, pkce_pair), "invalid_grant")

    grant = Grant.objects.get(user=alice)
    assert grant.revoked_at is not None
    assert grant.revoked_by == Grant.RevokedBy.REPLAY
    assert ApiKey.objects.get(user=alice).revoked_at is not None
    assert me(raw).status_code == 401


def test_a_valid_replay_is_recorded_in_the_audit_log(app, code, pkce_pair, alice):
    exchange(app, code, pkce_pair)
    exchange(app, code, pkce_pair, HTTP_USER_AGENT="attacker")
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.CODE_REPLAY)
    assert event.subject == alice
    assert event.client_id == "yourapp.com"
    assert event.key_prefix == ApiKey.objects.get(user=alice).prefix


def test_a_valid_replay_leaves_a_pre_existing_key_active(alice_client, app, pkce_pair, alice_key, alice):
    key, raw = alice_key
    code = issue_code(alice_client, pkce_pair, key=str(key.pk))
    assert exchange(app, code, pkce_pair).json()["access_token"] == raw
    assert_error(exchange(app, code, pkce_pair), "invalid_grant")
    assert Grant.objects.get(user=alice).revoked_at is not None
    key.refresh_from_db()
    assert key.revoked_at is None  # the user chose it; only the user may revoke it
    assert me(raw).status_code == 200


@pytest.mark.parametrize(
    "mistake",
    [
        {"code_verifier": "w" * 43},
        {"code_verifier": None},
        {"client_id": "otherapp.com"},
        {"redirect_uri": "https://yourapp.com/other"},
    ],
)
def test_an_invalid_replay_revokes_nothing(app, code, pkce_pair, alice, mistake):
    raw = exchange(app, code, pkce_pair).json()["access_token"]
    assert_error(exchange(app, code, pkce_pair, **mistake), "invalid_grant")
    assert Grant.objects.get(user=alice).revoked_at is None
    assert ApiKey.objects.get(user=alice).revoked_at is None
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.CODE_REPLAY).exists()
    assert me(raw).status_code == 200


def test_a_replay_of_one_code_does_not_revoke_another_users_grant(app, code, pkce_pair, bob, pkce_pair_b=None):
    bob_client = Client()
    bob_client.force_login(bob)
    bob_pkce = new_pkce_pair()
    bob_raw = exchange(app, issue_code(bob_client, bob_pkce), bob_pkce).json()["access_token"]
    exchange(app, code, pkce_pair)
    exchange(app, code, pkce_pair)
    assert me(bob_raw).status_code == 200
    assert Grant.objects.get(user=bob).revoked_at is None


# --- Error hygiene ----------------------------------------------------------------------------------


def test_errors_do_not_echo_any_input(app, code, pkce_pair):
    marker = "ECHO<b>'\"MARK"
    cases = [
        form(code=marker),
        form(code=code, client_id=marker),
        form(code=code, redirect_uri=marker),
        form(code=code, code_verifier=marker),
        form(grant_type=marker),
        form(grant_type=None, code=marker),
    ]
    for data in cases:
        response = token_request(app, **data)
        assert response.status_code == 400
        assert b"ECHO" not in response.content
        assert all("ECHO" not in value for value in response.headers.values())


@pytest.mark.parametrize("method", ["get", "put", "delete", "patch"])
def test_other_methods_get_405_with_allow(app, method):
    response = getattr(app, method)("/getKeys/token")
    assert response.status_code == 405
    assert "POST" in response["Allow"]
    assert response["Cache-Control"] == "no-store"


def test_the_token_endpoint_does_not_redirect_to_a_trailing_slash(app, code, pkce_pair):
    assert exchange(app, code, pkce_pair).status_code == 200
    assert app.post("/getKeys/token/", "", content_type=FORM).status_code == 404


# --- CORS ----------------------------------------------------------------------------------------------


def test_a_cors_preflight_is_answered(app):
    response = app.options(
        "/getKeys/token",
        HTTP_ORIGIN="https://yourapp.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in [m.strip() for m in response["Access-Control-Allow-Methods"].split(",")]
    assert "content-type" in response["Access-Control-Allow-Headers"].lower()
    assert "Access-Control-Allow-Credentials" not in response


def test_a_cors_preflight_without_requested_headers_still_allows_content_type(app):
    response = app.options(
        "/getKeys/token", HTTP_ORIGIN="https://yourapp.com", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST"
    )
    assert response.status_code == 204
    assert "content-type" in response["Access-Control-Allow-Headers"].lower()


def test_a_cors_preflight_does_not_reflect_a_header_injection(app):
    response = app.options(
        "/getKeys/token",
        HTTP_ORIGIN="https://yourapp.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type\r\nSet-Cookie: x=1",
    )
    assert response.status_code == 204
    assert "Set-Cookie" not in response.headers
    assert "x=1" not in response["Access-Control-Allow-Headers"]


def test_the_cross_origin_post_allows_any_origin_without_credentials(app, code, pkce_pair):
    response = exchange(app, code, pkce_pair, HTTP_ORIGIN="https://yourapp.com")
    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    assert "Set-Cookie" not in response.headers
    assert not response.cookies


def test_the_token_endpoint_sets_no_cookie_even_for_a_signed_in_browser(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair)
    response = exchange(alice_client, code, pkce_pair, HTTP_ORIGIN="https://yourapp.com")
    assert response.status_code == 200
    assert not response.cookies
    assert "Set-Cookie" not in response.headers


def test_errors_carry_cors_headers_too(app, db):
    response = token_request(app, **form(code="nope"), HTTP_ORIGIN="https://yourapp.com")
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_token_endpoint_needs_no_csrf_token(code, pkce_pair):
    strict = Client(enforce_csrf_checks=True)
    assert exchange(strict, code, pkce_pair, HTTP_ORIGIN="https://evil.example").status_code == 200
