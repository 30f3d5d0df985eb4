"""Keygrant under a live server, the example MCP server beside it, and a person at a browser.

Everything here is real HTTP on 127.0.0.1: Django's live server runs the
provider with its production code paths, the example MCP server runs under
uvicorn in a thread, and clients are the maintained libraries themselves.
"""

import socket
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from accounts.models import ApiKey, User
from tests.interop.browser import Browser
from tests.interop.servers import (
    StaticJsonServer,
    json_server_in_thread,
    listening_socket,
    load_example_server,
    uvicorn_in_thread,
)

CAROL_PASSWORD = "carol-interop-password"


@pytest.fixture
def keygrant(live_server, settings) -> str:
    """Keygrant's issuer: the live server's URL, used verbatim in metadata and `iss`."""
    issuer = live_server.url
    settings.OAUTH_ISSUER = issuer
    settings.OAUTH_RESOURCES = [issuer]
    return issuer


@pytest.fixture
def carol(transactional_db) -> User:
    return User.objects.create_user(username="carol", password=CAROL_PASSWORD, first_name="Carol", last_name="Interop")


@pytest.fixture
def person(keygrant, carol) -> Iterator[Browser]:
    """Carol at her browser (played over HTTP). Not named `browser`: that is
    pytest-playwright's Chromium, and the plugin runs every test that asks for
    a `browser` once per browser engine."""
    browser = Browser(keygrant, username="carol", password=CAROL_PASSWORD)
    yield browser
    browser.close()


@dataclass(frozen=True)
class ResourceServerCredentials:
    client_id: str
    secret: str


@pytest.fixture
def mcp_socket() -> Iterator[socket.socket]:
    """Where the example MCP server will listen: its URL is known before anything is issued for it."""
    sock = listening_socket()
    yield sock
    sock.close()


@pytest.fixture
def mcp_url(mcp_socket) -> str:
    host, port = mcp_socket.getsockname()[:2]
    return f"http://{host}:{port}/mcp"


@pytest.fixture
def resource_server(keygrant, mcp_url, settings, transactional_db) -> ResourceServerCredentials:
    """Introspection credentials for the example MCP server's resource, as an operator issues them in admin."""
    from oauthprovider.introspection import resource_server_create

    settings.OAUTH_RESOURCES = [keygrant, mcp_url]  # OAUTH_EXTRA_RESOURCES=<its URL>
    _, client_id, secret = resource_server_create(name="example-mcp", resources=[mcp_url])
    return ResourceServerCredentials(client_id=client_id, secret=secret)


def key_handed_to(user: User, resource: str, *, client_id: str = "interop-app.example") -> tuple[ApiKey, str]:
    """A key the user gave an app through a consent that named `resource` (as the grant records it)."""
    from accounts.audit import SYSTEM
    from accounts.services import key_create
    from oauthprovider.models import Grant

    key, raw = key_create(user=user, name="terminal", context=SYSTEM, created_for_client=client_id)
    Grant.objects.create(user=user, client_id=client_id, key=key, scope="key:read", resources=[resource])
    return key, raw


@dataclass(frozen=True)
class McpServer:
    url: str
    metadata_url: str
    config: object


@pytest.fixture
def example_mcp(keygrant, resource_server, mcp_socket, mcp_url) -> Iterator[McpServer]:
    """examples/mcp-server on a free port, registered with Keygrant as a resource."""
    example = load_example_server()
    sock = mcp_socket
    host, port = sock.getsockname()[:2]
    url = mcp_url
    config = example.Config(
        issuer=keygrant,
        server_url=url,
        introspection_client_id=resource_server.client_id,
        introspection_client_secret=resource_server.secret,
        host=host,
        port=port,
    )
    with uvicorn_in_thread(example.create_app(config), sock):
        yield McpServer(
            url=url, metadata_url=f"http://{host}:{port}/.well-known/oauth-protected-resource/mcp", config=config
        )


@pytest.fixture
def documents() -> Iterator[StaticJsonServer]:
    """A local web server for client metadata documents."""
    with json_server_in_thread() as server:
        yield server
