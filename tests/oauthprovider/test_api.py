"""GET /v1/me: the API that keys unlock, through HTTP."""

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from accounts.audit import SYSTEM
from accounts.models import ApiKey
from accounts.services import key_revoke

URL = "/v1/me"


@pytest.fixture
def api() -> Client:
    return Client()


def assert_unauthorized(response) -> dict:
    assert response.status_code == 401
    assert response["Content-Type"] == "application/json"
    assert response["WWW-Authenticate"].startswith("Bearer ")
    body = response.json()
    assert body["error"]
    return body


def test_a_key_in_x_api_key_identifies_its_owner(api, alice_key):
    key, raw = alice_key
    response = api.get(URL, HTTP_X_API_KEY=raw)
    assert response.status_code == 200
    body = response.json()
    assert body["user"]["username"] == "alice"
    assert body["key"] == {"name": "laptop", "prefix": key.prefix}


def test_a_key_as_a_bearer_token_works_too(api, alice_key):
    response = api.get(URL, HTTP_AUTHORIZATION=f"Bearer {alice_key[1]}")
    assert response.status_code == 200
    assert response.json()["user"]["username"] == "alice"


def test_the_bearer_scheme_is_case_insensitive(api, alice_key):
    assert api.get(URL, HTTP_AUTHORIZATION=f"bearer {alice_key[1]}").status_code == 200


def test_the_answer_never_contains_the_key(api, alice_key):
    response = api.get(URL, HTTP_X_API_KEY=alice_key[1])
    assert alice_key[1] not in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_a_missing_key_gets_401_with_a_challenge(api, db):
    assert_unauthorized(api.get(URL))


@pytest.mark.parametrize(
    "header",
    ["Basic YWxpY2U6cGFzcw==", "Bearer", "Bearer ", "Token abc", "kg_only"],
)
def test_an_authorization_header_without_a_bearer_key_gets_401(api, db, header):
    assert_unauthorized(api.get(URL, HTTP_AUTHORIZATION=header))


def test_an_unknown_key_gets_401_with_invalid_token(api, alice_key):
    raw = alice_key[1]
    forged = raw[:10] + ("A" if raw[10] != "A" else "B") + raw[11:]
    response = api.get(URL, HTTP_X_API_KEY=forged)
    body = assert_unauthorized(response)
    assert 'error="invalid_token"' in response["WWW-Authenticate"]
    assert body["error"] == "invalid_token"
    assert forged not in response.content.decode()


@pytest.mark.parametrize(
    "value",
    ["garbage", "kg_", "kg_" + "A" * 60, "kg_" + "A" * 54 + "é" * 6, "kg_" + "é" * 60, "x" * 10_000, "\x00" * 63],
)
def test_a_malformed_key_gets_401_not_an_error(api, db, value):
    assert_unauthorized(api.get(URL, HTTP_X_API_KEY=value))
    assert_unauthorized(api.get(URL, HTTP_AUTHORIZATION=f"Bearer {value}"))


def test_a_revoked_key_gets_401(api, alice_key):
    key, raw = alice_key
    key_revoke(key=key, context=SYSTEM)
    response = api.get(URL, HTTP_X_API_KEY=raw)
    assert_unauthorized(response)
    assert raw not in response.content.decode()


def test_revocation_takes_effect_at_once(api, alice_key):
    key, raw = alice_key
    assert api.get(URL, HTTP_X_API_KEY=raw).status_code == 200
    key_revoke(key=key, context=SYSTEM)
    assert api.get(URL, HTTP_X_API_KEY=raw).status_code == 401


def test_last_use_is_recorded(api, alice_key):
    key, raw = alice_key
    assert key.last_used_at is None
    api.get(URL, HTTP_X_API_KEY=raw)
    key.refresh_from_db()
    assert key.last_used_at is not None


def updates_of_api_keys(queries) -> int:
    return sum(1 for q in queries if q["sql"].lstrip().upper().startswith("UPDATE") and "apikey" in q["sql"].lower())


def test_last_use_is_written_at_most_once_a_minute(api, alice_key):
    raw = alice_key[1]
    with CaptureQueriesContext(connection) as queries:
        for _ in range(5):
            assert api.get(URL, HTTP_X_API_KEY=raw).status_code == 200
    assert updates_of_api_keys(queries.captured_queries) == 1


def test_last_use_is_written_again_once_the_minute_has_passed(api, alice_key):
    key, raw = alice_key
    api.get(URL, HTTP_X_API_KEY=raw)
    ApiKey.objects.filter(pk=key.pk).update(last_used_at=timezone.now() - timezone.timedelta(seconds=61))
    with CaptureQueriesContext(connection) as queries:
        for _ in range(3):
            api.get(URL, HTTP_X_API_KEY=raw)
    assert updates_of_api_keys(queries.captured_queries) == 1


def test_a_key_check_reads_no_more_than_it_needs(api, alice_key, django_assert_max_num_queries):
    raw = alice_key[1]
    api.get(URL, HTTP_X_API_KEY=raw)  # the first call records the use
    with django_assert_max_num_queries(1):
        assert api.get(URL, HTTP_X_API_KEY=raw).status_code == 200


def test_it_answers_cors_and_exposes_the_challenge(api, db):
    response = api.get(URL, HTTP_ORIGIN="https://yourapp.com")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "WWW-Authenticate" in response["Access-Control-Expose-Headers"]
    assert "Access-Control-Allow-Credentials" not in response


def test_it_answers_a_cors_preflight_allowing_the_key_header(api, db):
    response = api.options(
        URL,
        HTTP_ORIGIN="https://yourapp.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="x-api-key",
    )
    assert response.status_code == 204
    assert "x-api-key" in response["Access-Control-Allow-Headers"].lower()


def test_a_session_cookie_is_not_a_credential(alice_client):
    assert_unauthorized(alice_client.get(URL))
