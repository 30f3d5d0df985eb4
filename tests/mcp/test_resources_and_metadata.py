"""RFC 8707 resource indicators, RFC 9728 protected-resource metadata, discovery from a 401."""

import pytest
from django.test import Client

from oauthprovider.models import AuthorizationCode, Grant
from oauthprovider.protocol import resource_allowed
from tests.conftest import authorize_params, authorize_url, exchange, issue_code, query_of

ISSUER = "http://127.0.0.1:8000"
MCP_SERVER = "https://mcp.example.com/mcp"


@pytest.fixture(autouse=True)
def _resources(settings):
    settings.OAUTH_RESOURCES = [ISSUER, MCP_SERVER]


def test_a_configured_resource_is_accepted_at_authorize_and_token(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair, resource=MCP_SERVER)
    response = exchange(Client(), code, pkce_pair, resource=MCP_SERVER)
    assert response.status_code == 200, response.content


def test_the_built_in_api_is_a_resource_by_default(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair, resource=f"{ISSUER}/v1/me")
    assert exchange(Client(), code, pkce_pair, resource=f"{ISSUER}/v1/me").status_code == 200


def test_the_token_request_may_omit_the_resource(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair, resource=MCP_SERVER)
    assert exchange(Client(), code, pkce_pair).status_code == 200


def test_a_resource_we_do_not_serve_is_left_out_not_refused(alice_client, pkce_pair):
    # The reference CLI names its own loopback origin as the resource (DESIGN.md "Discovery").
    code = issue_code(alice_client, pkce_pair, resource="http://localhost:53682")
    assert exchange(Client(), code, pkce_pair, resource="http://localhost:53682").status_code == 200
    grant = Grant.objects.get()
    assert grant.resources == []
    assert AuthorizationCode.objects.get().resources == []


def test_an_unserved_resource_beside_a_configured_one_keeps_the_configured_one(alice_client, pkce_pair):
    params = {"resource": [MCP_SERVER, "https://elsewhere.example/api"]}
    code = issue_code(alice_client, pkce_pair, **params)
    assert Grant.objects.get().resources == [MCP_SERVER]
    assert exchange(Client(), code, pkce_pair, resource="https://elsewhere.example/api").status_code == 200


@pytest.mark.parametrize("resource", ["mcp.example.com", "https://mcp.example.com/mcp#frag", "/relative"])
def test_a_malformed_resource_is_invalid_target(alice_client, pkce_pair, resource):
    response = alice_client.get(authorize_url(authorize_params(pkce_pair, resource=resource)))
    assert response.status_code == 400
    assert b"invalid_target" in response.content


def test_the_token_resource_must_agree_with_the_authorized_one(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair, resource=MCP_SERVER)
    response = exchange(Client(), code, pkce_pair, resource=ISSUER)
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_target"
    # The code was not used up by the refused request.
    assert exchange(Client(), code, pkce_pair, resource=MCP_SERVER).status_code == 200


def test_an_unserved_resource_at_the_token_endpoint_does_not_widen_the_grant(alice_client, pkce_pair):
    code = issue_code(alice_client, pkce_pair, resource=MCP_SERVER)
    response = exchange(Client(), code, pkce_pair, resource="https://elsewhere.example/")
    assert response.status_code == 200
    assert Grant.objects.get().resources == [MCP_SERVER]


def test_resource_matching_respects_path_boundaries():
    allowed = ["https://mcp.example.com/mcp"]
    assert resource_allowed("https://mcp.example.com/mcp", allowed)
    assert resource_allowed("https://mcp.example.com/mcp/", allowed)
    assert resource_allowed("https://mcp.example.com/mcp/tools", allowed)
    assert not resource_allowed("https://mcp.example.com/mcpx", allowed)
    assert not resource_allowed("https://mcp.example.com.evil/mcp", allowed)
    assert not resource_allowed("https://mcp.example.com", allowed)


def test_the_protected_resource_metadata_names_the_issuer_byte_for_byte(db):
    response = Client().get("/.well-known/oauth-protected-resource")
    assert response.status_code == 200
    body = response.json()
    assert body["resource"] == ISSUER
    assert body["authorization_servers"] == [ISSUER]
    assert body["scopes_supported"] == ["key:read"]
    assert body["bearer_methods_supported"] == ["header"]
    assert response["Access-Control-Allow-Origin"] == "*"
    metadata = Client().get("/.well-known/oauth-authorization-server").json()
    assert metadata["issuer"] == body["authorization_servers"][0]


@pytest.mark.parametrize("suffix", ["v1", "v1/me"])
def test_the_path_suffixed_form_names_its_own_resource(db, suffix):
    response = Client().get(f"/.well-known/oauth-protected-resource/{suffix}")
    assert response.status_code == 200
    assert response.json()["resource"] == f"{ISSUER}/{suffix}"


def test_the_path_suffixed_form_is_not_found_outside_the_api(db):
    assert Client().get("/.well-known/oauth-protected-resource/admin").status_code == 404


def test_a_401_from_the_api_points_to_the_protected_resource_metadata(db):
    response = Client().get("/v1/me")
    assert response.status_code == 401
    challenge = response["WWW-Authenticate"]
    assert challenge.startswith("Bearer ")
    assert f'resource_metadata="{ISSUER}/.well-known/oauth-protected-resource"' in challenge
    assert "error=" not in challenge  # RFC 6750 3.1: no error code without credentials
    assert "WWW-Authenticate" in response["Access-Control-Expose-Headers"]


def test_a_401_for_a_bad_key_says_invalid_token(db):
    response = Client().get("/v1/me", HTTP_AUTHORIZATION="Bearer kg_nope")
    assert response.status_code == 401
    assert 'error="invalid_token"' in response["WWW-Authenticate"]


def test_the_authorization_server_metadata_advertises_every_endpoint(db):
    body = Client().get("/.well-known/oauth-authorization-server").json()
    assert body["registration_endpoint"] == f"{ISSUER}/getKeys/register"
    assert body["revocation_endpoint"] == f"{ISSUER}/getKeys/revoke"
    assert body["introspection_endpoint"] == f"{ISSUER}/getKeys/introspect"
    assert body["client_id_metadata_document_supported"] is True
    for endpoint in ("registration_endpoint", "revocation_endpoint", "token_endpoint"):
        path = body[endpoint].removeprefix(ISSUER)
        preflight = Client().options(path, HTTP_ORIGIN="https://a.example", HTTP_ACCESS_CONTROL_REQUEST_METHOD="POST")
        assert preflight.status_code == 204, endpoint


def test_the_redirect_still_carries_iss_with_a_resource(alice_client, pkce_pair):
    from tests.conftest import approve

    location = approve(alice_client, authorize_params(pkce_pair, resource=MCP_SERVER))
    assert query_of(location)["iss"] == [ISSUER]
