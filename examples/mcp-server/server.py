"""An MCP server whose tools are protected by Keygrant.

MCP clients find out how to get a key on their own: an unauthenticated
request is answered 401 with `WWW-Authenticate: Bearer resource_metadata=...`,
the protected-resource metadata (RFC 9728) names Keygrant as the
authorization server, and the client runs Keygrant's OAuth flow. The key it
gets is checked here through Keygrant's introspection endpoint (RFC 7662) and
then used, as the user's own API key, to call Keygrant's API.

Configuration (environment):
  KEYGRANT_ISSUER                       Keygrant's issuer, e.g. http://127.0.0.1:8000
  MCP_SERVER_URL                        this server's public URL, e.g. http://127.0.0.1:9000/mcp
  KEYGRANT_INTROSPECTION_CLIENT_ID      resource-server credentials issued by a
  KEYGRANT_INTROSPECTION_CLIENT_SECRET  Keygrant operator (create_resource_server)
  MCP_HOST, MCP_PORT                    where to listen (default 127.0.0.1:9000)
"""

import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

import httpx2
import uvicorn
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.auth.settings import AuthSettings
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.applications import Starlette

logger = logging.getLogger("keygrant_example_mcp")

SCOPE = "key:read"
# Every call to Keygrant gets a deadline; a hung authorization server must
# not hang the MCP server.
TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Config:
    issuer: str
    server_url: str
    introspection_client_id: str
    introspection_client_secret: str
    host: str = "127.0.0.1"
    port: int = 9000

    @classmethod
    def from_env(cls, environ: Mapping[str, str] = os.environ) -> "Config":
        missing = [
            name
            for name in ("KEYGRANT_INTROSPECTION_CLIENT_ID", "KEYGRANT_INTROSPECTION_CLIENT_SECRET")
            if not environ.get(name)
        ]
        if missing:
            raise SystemExit(
                f"Set {' and '.join(missing)}: resource-server credentials from Keygrant "
                "(python manage.py create_resource_server example-mcp --resource <MCP_SERVER_URL>)."
            )
        return cls(
            # The issuer goes into the metadata verbatim: clients compare it
            # byte for byte with Keygrant's own `issuer`, so no trailing slash.
            issuer=environ.get("KEYGRANT_ISSUER", "http://127.0.0.1:8000").rstrip("/"),
            server_url=environ.get("MCP_SERVER_URL", "http://127.0.0.1:9000/mcp"),
            introspection_client_id=environ["KEYGRANT_INTROSPECTION_CLIENT_ID"],
            introspection_client_secret=environ["KEYGRANT_INTROSPECTION_CLIENT_SECRET"],
            host=environ.get("MCP_HOST", "127.0.0.1"),
            port=int(environ.get("MCP_PORT", "9000")),
        )

    @property
    def path(self) -> str:
        return urlsplit(self.server_url).path or "/mcp"


class KeygrantIntrospection:
    """A TokenVerifier that asks Keygrant whether a bearer key is active (RFC 7662).

    Asking on every request means a key revoked in Keygrant stops working
    here at once. A busy server could cache answers for a few seconds.
    """

    def __init__(self, config: Config) -> None:
        self.url = f"{config.issuer}/getKeys/introspect"
        self.issuer = config.issuer
        # RFC 6749 section 2.3.1: form-encode the credentials before Basic.
        self.auth = httpx2.BasicAuth(
            quote(config.introspection_client_id, safe=""), quote(config.introspection_client_secret, safe="")
        )

    async def verify_token(self, token: str) -> AccessToken | None:
        try:
            async with httpx2.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
                response = await client.post(
                    self.url, data={"token": token, "token_type_hint": "access_token"}, auth=self.auth
                )
        except httpx2.HTTPError as exc:
            logger.warning("introspection failed: %s", type(exc).__name__)
            return None
        if response.status_code != 200:
            # 401 here means our own credentials are wrong, not the client's key.
            logger.warning("introspection answered HTTP %s", response.status_code)
            return None
        info = response.json()
        if info.get("active") is not True:
            return None
        return AccessToken(
            token=token,
            client_id=info.get("client_id") or "",
            scopes=(info.get("scope") or "").split(),
            expires_at=info.get("exp"),
            subject=info.get("sub"),
            claims={"iss": self.issuer, "username": info.get("username")},
        )


def create_app(config: Config) -> Starlette:
    """The MCP endpoint at `config.path`, and its protected-resource metadata."""
    mcp = MCPServer(
        name="keygrant-example",
        instructions="Tells you which Keygrant user and key this connection uses.",
        token_verifier=KeygrantIntrospection(config),
        auth=AuthSettings(
            issuer_url=config.issuer,
            resource_server_url=config.server_url,
            required_scopes=[SCOPE],
            # A Keygrant key is the user's API key, valid on every API that
            # accepts Keygrant keys; introspection's `aud` lists only what the
            # user's consents named, so this example accepts any active key.
            validate_token_resource=False,
        ),
    )

    @mcp.tool()
    async def whoami() -> str:
        """Say which Keygrant user and API key this MCP connection is using."""
        access_token = get_access_token()
        if access_token is None:  # the auth middleware lets no such request through
            raise RuntimeError("No Keygrant key on this request.")
        async with httpx2.AsyncClient(timeout=TIMEOUT_SECONDS) as client:
            response = await client.get(
                f"{config.issuer}/v1/me", headers={"Authorization": f"Bearer {access_token.token}"}
            )
        if response.status_code != 200:
            raise RuntimeError(f"Keygrant's API answered HTTP {response.status_code}.")
        me = response.json()
        user, key = me["user"], me["key"]
        name = user.get("name") or user["username"]
        return (
            f"You are {name} (username {user['username']}) on Keygrant, "
            f'using the key "{key["name"]}" ({key["prefix"]}...).'
        )

    # Host-header checks against DNS rebinding: our public host and loopback.
    public_host = urlsplit(config.server_url).netloc
    security = TransportSecuritySettings(
        allowed_hosts=[public_host, "127.0.0.1:*", "localhost:*", "[::1]:*"],
        allowed_origins=[f"{urlsplit(config.server_url).scheme}://{public_host}"],
    )
    # Stateless JSON: every request stands alone, so any number of instances
    # can serve it and each request is authenticated on its own.
    return mcp.streamable_http_app(
        streamable_http_path=config.path,
        stateless_http=True,
        json_response=True,
        transport_security=security,
        host=config.host,
    )


def main() -> None:
    config = Config.from_env()
    logging.basicConfig(level=logging.INFO)
    uvicorn.run(create_app(config), host=config.host, port=config.port)


if __name__ == "__main__":
    main()
