"""Keygrant under a live server, the example MCP server beside it, and a person at a browser.

Everything here is real HTTP on 127.0.0.1: Django's live server runs the
provider with its production code paths, the example MCP server runs under
uvicorn in a thread, and clients are the maintained libraries themselves.
"""

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from accounts.models import User
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
def resource_server(transactional_db) -> ResourceServerCredentials:
    """Introspection credentials, as an operator issues them in admin."""
    from oauthprovider.introspection import resource_server_create

    _, client_id, secret = resource_server_create(name="example-mcp")
    return ResourceServerCredentials(client_id=client_id, secret=secret)


@dataclass(frozen=True)
class McpServer:
    url: str
    metadata_url: str
    config: object


@pytest.fixture
def example_mcp(keygrant, resource_server, settings) -> Iterator[McpServer]:
    """examples/mcp-server on a free port, registered with Keygrant as a resource."""
    example = load_example_server()
    sock = listening_socket()
    host, port = sock.getsockname()[:2]
    url = f"http://{host}:{port}/mcp"
    settings.OAUTH_RESOURCES = [keygrant, url]
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
