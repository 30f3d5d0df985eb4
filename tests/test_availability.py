"""Health checks, and a database outage answered as one (503, Retry-After), never as a 500.

The outage here is simulated inside the process (every query fails the way
a refused connection does); tests/faults stops real servers.
"""

from contextlib import contextmanager
from unittest import mock

import pytest
from django.db import OperationalError, connection
from django.test import Client, override_settings

from tests.conftest import authorize_params, authorize_url, token_request


@contextmanager
def database_down():
    def refuse(execute, sql, params, many, context):
        raise OperationalError("connection refused (simulated)")

    with connection.execute_wrapper(refuse):
        yield


@pytest.fixture
def visitor() -> Client:
    """A client that sees error responses instead of the server's exceptions."""
    return Client(raise_request_exception=False)


# --- Health checks ------------------------------------------------------------------------------


def test_liveness_touches_nothing(db, django_assert_num_queries):
    with django_assert_num_queries(0):
        response = Client().get("/healthz")
    assert response.status_code == 200
    assert response.content == b"ok\n"
    assert response["Cache-Control"] == "no-store"


def test_liveness_answers_a_load_balancer_over_http_with_its_own_host(db, settings):
    settings.SECURE_SSL_REDIRECT = True
    settings.ALLOWED_HOSTS = ["keys.example.com"]
    response = Client().get("/healthz", HTTP_HOST="10.0.0.7:8000")
    assert response.status_code == 200


def test_readiness_asks_the_database(db):
    response = Client().get("/readyz")
    assert response.status_code == 200
    assert response.content == b"ready\n"


def test_readiness_is_503_while_the_database_is_down_and_says_nothing_more(db, visitor):
    with database_down():
        response = visitor.get("/readyz")
    assert response.status_code == 503
    assert response.content == b"unavailable\n"


def test_readiness_does_not_depend_on_the_shared_cache(db):
    """A cache outage is no outage of the instance (issue #15): a balancer must not take every instance out."""
    nothing_listens = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:9/0"}
    }
    with override_settings(CACHES=nothing_listens):
        response = Client().get("/readyz")
    assert response.status_code == 200


# --- A database outage ------------------------------------------------------------------------


def test_the_token_endpoint_answers_an_outage_as_temporarily_unavailable(db, visitor):
    with database_down():
        response = token_request(
            visitor,
            grant_type="authorization_code",
            code="x" * 43,
            client_id="yourapp.com",
            redirect_uri="https://yourapp.com/cb",
        )
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"
    assert response["Retry-After"] == "5"
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_the_api_answers_an_outage_as_503_json(db, visitor, alice_key):
    raw = alice_key[1]
    with database_down():
        response = visitor.get("/v1/me", HTTP_X_API_KEY=raw)
    assert response.status_code == 503
    assert response.json()["error"] == "temporarily_unavailable"


def test_introspection_keeps_its_no_cors_policy_in_an_outage(db, visitor):
    with database_down():
        response = visitor.post(
            "/getKeys/introspect",
            "token=x",
            content_type="application/x-www-form-urlencoded",
            HTTP_AUTHORIZATION="Basic eDp5",
        )
    assert response.status_code == 503
    assert "Access-Control-Allow-Origin" not in response


def test_a_person_gets_a_page_that_says_to_try_the_same_url_again(alice, visitor, pkce_pair):
    visitor.force_login(alice)
    with database_down():
        response = visitor.get(authorize_url(authorize_params(pkce_pair)))
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    text = response.content.decode()
    assert "briefly unavailable" in text and "Try again" in text


def test_a_decision_lost_to_an_outage_says_it_was_not_saved(alice, visitor, pkce_pair):
    visitor.force_login(alice)
    page = visitor.get(authorize_url(authorize_params(pkce_pair)))
    with database_down():
        response = visitor.post("/getKeys/authorize", {"request": "x", "decision": "allow", "key": "new"})
    assert page.status_code == 200
    assert response.status_code == 503
    assert "not saved" in response.content.decode()


def test_a_bug_is_still_a_500(db, visitor):
    with mock.patch("oauthprovider.views.metadata._encoded", side_effect=ValueError("bug")):
        response = visitor.get("/.well-known/oauth-authorization-server")
    assert response.status_code == 500
    assert "Retry-After" not in response


def test_once_a_consent_is_committed_the_person_is_sent_to_the_app_whatever_fails_next(
    transactional_db, alice, pkce_pair
):
    """Nothing after the decision's commit needs the database (no session save, no pending row)."""
    from oauthprovider.models import AuthorizationCode
    from tests.conftest import consent_request_id

    browser = Client(raise_request_exception=False)
    browser.force_login(alice)
    page = browser.get(authorize_url(authorize_params(pkce_pair)))
    committed = []
    real_commit = connection.commit

    def commit():
        real_commit()
        committed.append(True)

    def fail_after_commit(execute, sql, params, many, context):
        if committed:
            raise OperationalError("the database went away (simulated)")
        return execute(sql, params, many, context)

    with mock.patch.object(connection, "commit", commit), connection.execute_wrapper(fail_after_commit):
        response = browser.post(
            "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
        )
    assert committed, "the decision was committed"
    assert response.status_code == 302
    assert "code=" in response["Location"]
    assert AuthorizationCode.objects.count() == 1
