"""The `mcp` SDK's own OAuth client, driven the way an MCP host application drives it."""

from dataclasses import dataclass, field

import anyio
import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata

from tests.interop.browser import Browser, redirect_query
from tests.interop.servers import load_example

# The whole connection (discovery, registration, consent, exchange, tool
# call) must finish within this; every single HTTP request has its own limit.
FLOW_SECONDS = 60
HTTP_TIMEOUT = httpx2.Timeout(15.0)


# The example client's in-memory TokenStorage: the tests use what the example ships.
MemoryStorage = load_example("client").MemoryStorage


@dataclass
class McpHost:
    """An MCP host application: the SDK's OAuthClientProvider plus a browser for the person."""

    server_url: str
    client_metadata: OAuthClientMetadata
    browser: Browser
    client_metadata_url: str | None = None
    storage: MemoryStorage = field(default_factory=MemoryStorage)
    authorization_urls: list[str] = field(default_factory=list)
    redirects: list[str] = field(default_factory=list)

    def provider(self) -> OAuthClientProvider:
        provider = OAuthClientProvider(
            server_url=self.server_url,
            client_metadata=self.client_metadata,
            storage=self.storage,
            redirect_handler=self._open_browser,
            callback_handler=self._receive_callback,
        )
        if self.client_metadata_url:
            # The SDK accepts only https:// document URLs; the test document
            # is served over http:// from 127.0.0.1 (which Keygrant fetches
            # only under the test-only OAUTH_CIMD_ALLOW_INSECURE_LOCAL_FETCH),
            # so it is set after the constructor's check.
            provider.context.client_metadata_url = self.client_metadata_url
        return provider

    async def _open_browser(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        self.redirects.append(await anyio.to_thread.run_sync(self.browser.approve, authorization_url))

    async def _receive_callback(self) -> AuthorizationCodeResult:
        params = redirect_query(self.redirects[-1])
        assert "code" in params, f"the redirect carries a code: {self.redirects[-1]}"
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    def call_tool(self, name: str, arguments: dict | None = None) -> str:
        """Connect (running the OAuth flow on the 401), call one tool, return its text."""
        return anyio.run(self._call_tool, name, arguments or {})

    async def _call_tool(self, name: str, arguments: dict) -> str:
        with anyio.fail_after(FLOW_SECONDS):
            async with httpx2.AsyncClient(auth=self.provider(), timeout=HTTP_TIMEOUT) as http:
                async with Client(streamable_http_client(self.server_url, http_client=http)) as client:
                    result = await client.call_tool(name, arguments)
        assert not result.is_error, result
        return "\n".join(block.text for block in result.content if block.type == "text")


async def _call_with_key(server_url: str, key: str, name: str) -> str:
    headers = {"Authorization": f"Bearer {key}"}
    with anyio.fail_after(FLOW_SECONDS):
        async with httpx2.AsyncClient(headers=headers, timeout=HTTP_TIMEOUT) as http:
            async with Client(streamable_http_client(server_url, http_client=http)) as client:
                result = await client.call_tool(name, {})
    assert not result.is_error, result
    return "\n".join(block.text for block in result.content if block.type == "text")


def call_tool_with_key(server_url: str, key: str, name: str = "whoami") -> str:
    """Call a tool presenting a key directly (no OAuth flow): what a configured client does."""
    return anyio.run(_call_with_key, server_url, key, name)
