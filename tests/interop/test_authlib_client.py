"""Authlib's OAuth 2 client runs the plain hostname flow: no registration, client_id = the app's host.

The redirect back to the app is read from the Location header; nothing is
fetched there, so an https redirect URI works as well as a loopback one.
"""

import httpx
import pytest
from authlib.common.security import generate_token
from authlib.integrations.httpx_client import OAuth2Client
from authlib.oauth2.rfc8414 import AuthorizationServerMetadata

from tests.interop.browser import redirect_query
from tests.interop.servers import free_port

pytestmark = pytest.mark.interop

TIMEOUT = httpx.Timeout(10.0)


@pytest.fixture
def metadata(keygrant) -> dict:
    response = httpx.get(f"{keygrant}/.well-known/oauth-authorization-server", timeout=TIMEOUT)
    assert response.status_code == 200
    return response.json()


def oauth_client(client_id: str, redirect_uri: str) -> OAuth2Client:
    return OAuth2Client(
        client_id=client_id,
        redirect_uri=redirect_uri,
        scope="key:read",
        code_challenge_method="S256",
        token_endpoint_auth_method="none",
        revocation_endpoint_auth_method="none",
        timeout=10.0,
    )


def obtain_key(client: OAuth2Client, metadata: dict, person) -> dict:
    """Authorize (the person logs in and allows), then exchange the code with the verifier."""
    verifier = generate_token(64)
    url, state = client.create_authorization_url(metadata["authorization_endpoint"], code_verifier=verifier)
    location = person.approve(url)
    assert location.startswith(client.redirect_uri + "?")
    assert redirect_query(location)["iss"] == metadata["issuer"]  # RFC 9207, checked by hand
    return client.fetch_token(
        metadata["token_endpoint"], authorization_response=location, state=state, code_verifier=verifier
    )


def test_authlib_validates_keygrants_metadata(metadata, keygrant):
    AuthorizationServerMetadata(metadata).validate()
    assert metadata["issuer"] == keygrant


@pytest.mark.parametrize(
    ("client_id", "redirect_uri"),
    [
        ("app.example.com", "https://app.example.com/oauth/callback"),
        ("127.0.0.1", f"http://127.0.0.1:{free_port()}/callback"),
    ],
    ids=["web-app", "loopback-cli"],
)
def test_authlib_gets_a_key_and_uses_it_on_the_api(metadata, keygrant, person, client_id, redirect_uri):
    with oauth_client(client_id, redirect_uri) as client:
        token = obtain_key(client, metadata, person)

        assert token["token_type"] == "Bearer"
        assert token["scope"] == "key:read"
        me = client.get(f"{keygrant}/v1/me")

    assert me.status_code == 200
    assert me.json()["user"]["username"] == "carol"
    assert me.json()["key"]["prefix"] in token["access_token"]
    assert token["access_token"] not in me.text


def test_authlib_gives_the_key_back_and_the_api_refuses_it(metadata, keygrant, person):
    with oauth_client("app.example.com", "https://app.example.com/oauth/callback") as client:
        token = obtain_key(client, metadata, person)

        revocation = client.revoke_token(
            metadata["revocation_endpoint"], token=token["access_token"], token_type_hint="access_token"
        )

    assert revocation.status_code == 200
    me = httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": token["access_token"]}, timeout=TIMEOUT)
    assert me.status_code == 401
    challenge = me.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{keygrant}/.well-known/oauth-protected-resource"' in challenge


def test_another_app_cannot_revoke_the_key(metadata, keygrant, person):
    with oauth_client("app.example.com", "https://app.example.com/oauth/callback") as client:
        token = obtain_key(client, metadata, person)
    with oauth_client("other.example.net", "https://other.example.net/callback") as other:
        revocation = other.revoke_token(metadata["revocation_endpoint"], token=token["access_token"])

    assert revocation.status_code == 200  # RFC 7009 2.2: nothing is learnt
    me = httpx.get(f"{keygrant}/v1/me", headers={"x-api-key": token["access_token"]}, timeout=TIMEOUT)
    assert me.status_code == 200
