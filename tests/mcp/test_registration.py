"""POST /getKeys/register: stateless dynamic client registration (RFC 7591)."""

import json

import pytest
from django.test import Client

from oauthprovider.protocol import OAuthError, register_client


def register(client: Client, body, *, content_type="application/json"):
    data = body if isinstance(body, (str, bytes)) else json.dumps(body)
    return client.post("/getKeys/register", data, content_type=content_type)


@pytest.fixture
def app() -> Client:
    return Client()


def test_it_registers_a_client_as_the_host_of_its_redirect_uris(app, db):
    response = register(app, {"redirect_uris": ["https://yourapp.com/callback"], "client_name": "Your App"})
    assert response.status_code == 201
    assert response.json() == {
        "client_id": "yourapp.com",
        "redirect_uris": ["https://yourapp.com/callback"],
        "token_endpoint_auth_method": "none",
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "scope": "key:read",
    }
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"


def test_registering_the_same_thing_twice_gives_the_same_answer(app, db):
    body = {"redirect_uris": ["http://localhost:3030/callback"]}
    assert register(app, body).json() == register(app, body).json()


def test_it_answers_secret_and_refresh_token_requests_with_what_it_supports(app, db):
    # What deployed MCP clients send (RFC 7591 3.2.1 lets the server replace values).
    response = register(
        app,
        {
            "redirect_uris": ["http://localhost:3030/callback"],
            "token_endpoint_auth_method": "client_secret_post",
            "grant_types": ["authorization_code", "refresh_token"],
            "response_types": ["code"],
            "scope": "key:read offline_access",
        },
    )
    assert response.status_code == 201
    body = response.json()
    assert body["client_id"] == "localhost"
    assert body["token_endpoint_auth_method"] == "none"
    assert body["grant_types"] == ["authorization_code"]
    assert "client_secret" not in body


@pytest.mark.parametrize(
    "redirect_uris",
    [
        [],
        "https://yourapp.com/cb",
        [42],
        ["https://yourapp.com/cb", "https://other.com/cb"],
        ["http://yourapp.com/cb"],
        ["https://evil@yourapp.com/cb"],
        ["https://yourapp.com/cb#frag"],
        ["https://yourapp.com\\@evil.com/"],
        ["https://10.0.0.1/cb"],
        ["https://yourapp.com/a/../cb"],
        ["https://yourapp.com/" + "a" * 3000],
    ],
)
def test_it_refuses_invalid_redirect_uris(app, db, redirect_uris):
    response = register(app, {"redirect_uris": redirect_uris})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


def test_it_refuses_a_missing_redirect_uris(app, db):
    response = register(app, {"client_name": "x"})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


@pytest.mark.parametrize(
    "extra",
    [{"grant_types": ["client_credentials"]}, {"response_types": ["token"]}, {"grant_types": "authorization_code"}],
)
def test_it_refuses_metadata_it_cannot_serve(app, db, extra):
    response = register(app, {"redirect_uris": ["https://yourapp.com/cb"], **extra})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        ("not json", "application/json"),
        ("[1, 2]", "application/json"),
        ('{"redirect_uris": ["https://yourapp.com/cb"]}', "application/x-www-form-urlencoded"),
        (b"\xff\xfe", "application/json"),
        ('{"redirect_uris": ["https://yourapp.com/cb\\u0000"]}', "application/json"),
    ],
)
def test_it_answers_malformed_bodies_with_a_json_error(app, db, body, content_type):
    response = register(app, body, content_type=content_type)
    assert response.status_code == 400
    assert response.json()["error"] in {"invalid_client_metadata", "invalid_redirect_uri"}


def test_loopback_registration_follows_the_operator_setting(app, db, settings):
    settings.OAUTH_ALLOW_LOOPBACK_CLIENTS = False
    response = register(app, {"redirect_uris": ["http://127.0.0.1:9999/cb"]})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_redirect_uri"


def test_the_preflight_allows_a_browser_to_register(app, db):
    response = app.options(
        "/getKeys/register",
        HTTP_ORIGIN="https://yourapp.com",
        HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST",
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS="content-type",
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == "*"
    assert "POST" in response["Access-Control-Allow-Methods"]


def test_a_registered_client_id_works_at_the_authorization_endpoint(alice_client, pkce_pair):
    from tests.conftest import authorize_params, authorize_url

    registered = register(Client(), {"redirect_uris": ["http://127.0.0.1:4567/callback"]}).json()
    page = alice_client.get(
        authorize_url(
            authorize_params(pkce_pair, client_id=registered["client_id"], redirect_uri=registered["redirect_uris"][0])
        )
    )
    assert page.status_code == 200
    assert b"an app running on your own computer" in page.content


def test_register_client_is_a_pure_function():
    with pytest.raises(OAuthError):
        register_client({"redirect_uris": ["ftp://yourapp.com/"]}, allow_loopback=True)


# --- Device clients (RFC 8628) ------------------------------------------------------------------

DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"


def test_a_device_client_registers_without_redirect_uris(app, db):
    # What a published MCP client with a device-code login sends.
    response = register(app, {"client_name": "Terminal MCP", "grant_types": [DEVICE_GRANT, "refresh_token"]})
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["client_id"] == "Terminal MCP"
    assert body["grant_types"] == [DEVICE_GRANT]
    assert body["response_types"] == []
    assert body["token_endpoint_auth_method"] == "none"


def test_a_device_client_without_a_name_still_gets_a_usable_client_id(app, db):
    body = register(app, {"grant_types": [DEVICE_GRANT], "client_name": "\u202e\x00"}).json()
    assert body["client_id"] == "unnamed device app"
    started = Client().post(
        "/getKeys/device/code", f"client_id={body['client_id']}", content_type="application/x-www-form-urlencoded"
    )
    assert started.status_code == 200


def test_a_client_of_both_grants_is_its_redirect_host(app, db):
    body = register(
        app, {"redirect_uris": ["https://yourapp.com/cb"], "grant_types": ["authorization_code", DEVICE_GRANT]}
    ).json()
    assert body["client_id"] == "yourapp.com"
    assert body["grant_types"] == ["authorization_code", DEVICE_GRANT]
    assert body["response_types"] == ["code"]


@pytest.mark.parametrize("grant_types", [["client_credentials"], ["refresh_token"], "authorization_code", [None]])
def test_grants_we_do_not_offer_are_invalid_client_metadata(app, db, grant_types):
    response = register(app, {"redirect_uris": ["https://yourapp.com/cb"], "grant_types": grant_types})
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"
