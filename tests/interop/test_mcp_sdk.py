"""The `mcp` SDK's OAuthClientProvider finds and uses Keygrant with nothing configured but the server URL.

It starts from the example MCP server's 401, reads its protected-resource
metadata (RFC 9728) and Keygrant's metadata (RFC 8414), registers (RFC 7591)
or presents a client metadata document, sends `resource` (RFC 8707), checks
`iss` (RFC 9207), exchanges the code with PKCE and calls the tool.
"""

from urllib.parse import parse_qs, urlsplit

import pytest
from mcp.shared.auth import OAuthClientMetadata

from tests.interop.browser import redirect_query
from tests.interop.mcp_client import McpHost
from tests.interop.servers import free_port

pytestmark = pytest.mark.interop


def query(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


def loopback_client_metadata() -> OAuthClientMetadata:
    """What a desktop MCP host sends: SDK defaults, a loopback callback and a name."""
    return OAuthClientMetadata(
        redirect_uris=[f"http://localhost:{free_port()}/callback"], client_name="Interop MCP host"
    )


def test_the_sdk_discovers_registers_authorizes_and_calls_the_tool(keygrant, example_mcp, person):
    host = McpHost(server_url=example_mcp.url, client_metadata=loopback_client_metadata(), browser=person)

    text = host.call_tool("whoami")

    assert "Carol Interop" in text
    assert "username carol" in text
    # Registration answered with the hostname model: client_id is the redirect host.
    assert host.storage.client_info.client_id == "localhost"
    assert host.storage.client_info.token_endpoint_auth_method == "none"
    [authorization_url] = host.authorization_urls
    assert authorization_url.startswith(f"{keygrant}/getKeys/authorize?")
    request = query(authorization_url)
    assert request["resource"] == example_mcp.url
    assert request["scope"] == "key:read"
    assert request["code_challenge_method"] == "S256"
    assert redirect_query(host.redirects[0])["iss"] == keygrant
    assert host.storage.tokens.token_type == "Bearer"
    assert host.storage.tokens.scope == "key:read"


def test_the_sdk_reuses_the_key_it_got_without_asking_again(example_mcp, person):
    host = McpHost(server_url=example_mcp.url, client_metadata=loopback_client_metadata(), browser=person)
    host.call_tool("whoami")

    text = host.call_tool("whoami")

    assert "Carol Interop" in text
    assert len(host.authorization_urls) == 1


def test_the_sdk_uses_a_client_id_metadata_document_instead_of_registering(
    keygrant, example_mcp, person, documents, settings
):
    settings.OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH = True  # the document is served over http from 127.0.0.1
    metadata = loopback_client_metadata()
    document_url = f"{documents.base_url}/clients/interop-host.json"
    documents.documents["/clients/interop-host.json"] = {
        "client_id": document_url,
        "client_name": "Interop MCP Host",
        "redirect_uris": [str(uri) for uri in metadata.redirect_uris],
        "grant_types": ["authorization_code"],
        "response_types": ["code"],
        "token_endpoint_auth_method": "none",
    }
    host = McpHost(
        server_url=example_mcp.url, client_metadata=metadata, browser=person, client_metadata_url=document_url
    )

    text = host.call_tool("whoami")

    assert "Carol Interop" in text
    assert host.storage.client_info.client_id == document_url
    assert query(host.authorization_urls[0])["client_id"] == document_url
    assert "/clients/interop-host.json" in documents.fetches
    assert "Interop MCP Host" in person.consent_pages[0]
