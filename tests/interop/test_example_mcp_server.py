"""examples/mcp-server against Keygrant: the 401, its metadata, and introspection."""

import anyio
import httpx
import pytest

from accounts.audit import SYSTEM
from accounts.services import key_create, key_revoke
from tests.interop.conftest import key_handed_to
from tests.interop.mcp_client import call_tool_with_key
from tests.interop.servers import load_example_server

pytestmark = pytest.mark.interop

TIMEOUT = httpx.Timeout(10.0)
MCP_HEADERS = {"Accept": "application/json, text/event-stream", "Content-Type": "application/json"}
LIST_TOOLS = {"jsonrpc": "2.0", "id": 1, "method": "tools/list"}


def post_to_mcp(url: str, **headers: str) -> httpx.Response:
    return httpx.post(url, json=LIST_TOOLS, headers={**MCP_HEADERS, **headers}, timeout=TIMEOUT)


def test_it_answers_a_request_without_a_key_with_401_and_its_metadata_url(example_mcp):
    response = post_to_mcp(example_mcp.url)

    assert response.status_code == 401
    challenge = response.headers["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{example_mcp.metadata_url}"' in challenge


def test_its_protected_resource_metadata_names_keygrant_byte_for_byte(keygrant, example_mcp):
    response = httpx.get(example_mcp.metadata_url, timeout=TIMEOUT)

    assert response.status_code == 200
    document = response.json()
    assert document["resource"] == example_mcp.url
    assert document["authorization_servers"] == [keygrant]
    assert document["scopes_supported"] == ["key:read"]
    assert document["bearer_methods_supported"] == ["header"]
    as_metadata = httpx.get(f"{keygrant}/.well-known/oauth-authorization-server", timeout=TIMEOUT).json()
    assert as_metadata["issuer"] == document["authorization_servers"][0]


def test_its_tool_calls_keygrants_api_with_the_key(example_mcp, carol):
    _, raw = key_handed_to(carol, example_mcp.url)

    text = call_tool_with_key(example_mcp.url, raw)

    assert "Carol Interop" in text
    assert "username carol" in text
    assert '"terminal"' in text
    assert raw not in text


def test_it_refuses_a_key_once_it_is_revoked(keygrant, example_mcp, carol, resource_server):
    key, raw = key_handed_to(carol, example_mcp.url)
    assert post_to_mcp(example_mcp.url, Authorization=f"Bearer {raw}").status_code == 200

    key_revoke(key=key, context=SYSTEM)

    introspection = httpx.post(
        f"{keygrant}/getKeys/introspect",
        data={"token": raw},
        auth=(resource_server.client_id, resource_server.secret),
        timeout=TIMEOUT,
    )
    assert introspection.json() == {"active": False}
    response = post_to_mcp(example_mcp.url, Authorization=f"Bearer {raw}")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response.headers["WWW-Authenticate"]


def test_it_refuses_an_unknown_key(example_mcp):
    response = post_to_mcp(example_mcp.url, Authorization="Bearer kg_this-key-does-not-exist")

    assert response.status_code == 401


def test_it_refuses_a_key_that_was_never_handed_to_it(example_mcp, carol):
    """Introspection answers only about keys whose grants name the asking server (issue #13 item 11)."""
    _, own = key_create(user=carol, name="made by carol", context=SYSTEM)
    _, elsewhere = key_handed_to(carol, "http://127.0.0.1:9/another-mcp", client_id="elsewhere.example")

    assert post_to_mcp(example_mcp.url, Authorization=f"Bearer {own}").status_code == 401
    assert post_to_mcp(example_mcp.url, Authorization=f"Bearer {elsewhere}").status_code == 401


def test_introspection_describes_an_active_key_without_returning_it(keygrant, carol, resource_server, mcp_url):
    _, raw = key_handed_to(carol, mcp_url)

    response = httpx.post(
        f"{keygrant}/getKeys/introspect",
        data={"token": raw, "token_type_hint": "access_token"},
        auth=(resource_server.client_id, resource_server.secret),
        timeout=TIMEOUT,
    )

    assert response.status_code == 200
    info = response.json()
    assert info["active"] is True
    assert info["scope"] == "key:read"
    assert info["username"] == "carol"
    assert info["token_type"] == "Bearer"
    assert info["aud"] == [mcp_url]
    assert raw not in response.text


def test_the_verifier_accepts_nothing_when_its_own_credentials_are_wrong(keygrant, carol, resource_server, mcp_url):
    _, raw = key_handed_to(carol, mcp_url)
    example = load_example_server()

    def verifier(secret: str):
        return example.KeygrantIntrospection(
            example.Config(
                issuer=keygrant,
                server_url="http://127.0.0.1:9/mcp",
                introspection_client_id=resource_server.client_id,
                introspection_client_secret=secret,
            )
        )

    assert anyio.run(verifier(resource_server.secret).verify_token, raw) is not None
    assert anyio.run(verifier("not-the-secret").verify_token, raw) is None
