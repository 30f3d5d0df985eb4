"""GET /.well-known/oauth-authorization-server (RFC 8414) through HTTP."""

import pytest
from django.test import Client
from django.urls import Resolver404, resolve

from tests.conftest import approve, authorize_params, query_of

URL = "/.well-known/oauth-authorization-server"


@pytest.fixture
def metadata(db) -> dict:
    response = Client().get(URL)
    assert response.status_code == 200
    return response.json()


def test_it_is_json(db):
    response = Client().get(URL)
    assert response["Content-Type"] == "application/json"


def test_the_issuer_is_the_setting(metadata, settings):
    assert metadata["issuer"] == settings.OAUTH_ISSUER


def test_the_issuer_is_the_setting_byte_for_byte_not_the_request_host(settings, db):
    settings.OAUTH_ISSUER = "https://keys.example.com"
    settings.ALLOWED_HOSTS = ["evil.example", "keys.example.com"]
    response = Client().get(URL, HTTP_HOST="evil.example", secure=True)
    raw = response.content.decode()
    assert '"issuer": "https://keys.example.com"' in raw
    assert "evil.example" not in raw


def test_the_issuer_in_the_metadata_matches_the_iss_in_redirects(settings, alice_client, pkce_pair):
    settings.OAUTH_ISSUER = "https://keys.example.com:8443/tenant"
    metadata = Client().get(URL).json()
    location = approve(alice_client, authorize_params(pkce_pair))
    assert query_of(location)["iss"] == [metadata["issuer"]]
    assert metadata["issuer"] == "https://keys.example.com:8443/tenant"


def test_it_names_the_endpoints_under_the_issuer(metadata, settings):
    issuer = settings.OAUTH_ISSUER
    assert metadata["authorization_endpoint"] == f"{issuer}/getKeys/authorize"
    assert metadata["token_endpoint"] == f"{issuer}/getKeys/token"


@pytest.mark.parametrize(
    "field, value",
    [
        ("response_types_supported", ["code"]),
        ("grant_types_supported", ["authorization_code", "urn:ietf:params:oauth:grant-type:device_code"]),
        ("code_challenge_methods_supported", ["S256"]),
        ("token_endpoint_auth_methods_supported", ["none"]),
        ("scopes_supported", ["key:read"]),
        ("authorization_response_iss_parameter_supported", True),
    ],
)
def test_it_lists_the_field_design_requires(metadata, field, value):
    assert metadata[field] == value


def test_every_endpoint_it_lists_exists_without_a_trailing_slash(metadata, settings):
    endpoints = {k: v for k, v in metadata.items() if k.endswith("_endpoint")}
    assert {"authorization_endpoint", "token_endpoint"} <= set(endpoints)
    for name, url in endpoints.items():
        assert url.startswith(settings.OAUTH_ISSUER + "/"), name
        path = url[len(settings.OAUTH_ISSUER) :]
        assert not path.endswith("/"), name
        try:
            resolve(path)
        except Resolver404:
            pytest.fail(f"{name} {url} does not exist")


def test_every_endpoint_that_exists_is_listed(metadata):
    for field, path in [
        ("registration_endpoint", "/getKeys/register"),
        ("revocation_endpoint", "/getKeys/revoke"),
        ("introspection_endpoint", "/getKeys/introspect"),
    ]:
        try:
            resolve(path)
        except Resolver404:
            continue
        assert metadata.get(field, "").endswith(path), field


def test_it_answers_cors_for_any_origin_without_credentials(db):
    response = Client().get(URL, HTTP_ORIGIN="https://yourapp.com")
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "Access-Control-Allow-Credentials" not in response
    assert not response.cookies


def test_it_answers_a_cors_preflight(db):
    response = Client().options(URL, HTTP_ORIGIN="https://yourapp.com", HTTP_ACCESS_CONTROL_REQUEST_METHOD="GET")
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "GET" in response["Access-Control-Allow-Methods"]


def test_it_refuses_a_post(db):
    response = Client().post(URL)
    assert response.status_code == 405
    assert "GET" in response["Allow"]


def test_it_is_the_same_for_everyone(alice_client, db):
    assert alice_client.get(URL).json() == Client().get(URL).json()


def test_the_issuer_has_no_trailing_slash_and_every_endpoint_is_below_it(metadata):
    assert not metadata["issuer"].endswith("/")
    endpoints = [value for name, value in metadata.items() if name.endswith("_endpoint")]
    assert len(endpoints) >= 5
    assert all(url.startswith(metadata["issuer"] + "/") for url in endpoints)
