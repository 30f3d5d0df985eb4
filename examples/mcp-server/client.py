"""Connect to the example MCP server the way an MCP host does, and call `whoami`.

The `mcp` SDK does all the OAuth work: it reads the server's 401 and
metadata, registers with Keygrant, and sends you to the consent page in
your browser. This script only opens the browser and catches the redirect
on http://127.0.0.1:<port>/callback (a loopback app: client_id 127.0.0.1).

    python client.py [http://127.0.0.1:9000/mcp]
"""

import sys
import threading
import webbrowser
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp.client import Client
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull, OAuthClientMetadata, OAuthToken


class MemoryStorage:
    """Keeps the registration and the key for this run only."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class CallbackServer(HTTPServer):
    """Receives the one redirect back from Keygrant on a free loopback port."""

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), CallbackHandler)
        self.received = threading.Event()
        self.params: dict[str, str] = {}

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/callback"


class CallbackHandler(BaseHTTPRequestHandler):
    server: CallbackServer

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        if url.path != "/callback":
            self.send_error(404)
            return
        self.server.params = {name: values[0] for name, values in parse_qs(url.query).items()}
        self.server.received.set()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.end_headers()
        self.wfile.write(b"Done. You can close this tab and go back to the terminal.")

    def log_message(self, format: str, *args) -> None:
        pass


async def main(server_url: str) -> None:
    callback = CallbackServer()
    threading.Thread(target=callback.serve_forever, daemon=True).start()

    async def open_browser(authorization_url: str) -> None:
        print(f"Opening your browser to authorize. If it does not open, visit:\n  {authorization_url}")
        webbrowser.open(authorization_url)

    async def wait_for_callback() -> AuthorizationCodeResult:
        if not await anyio.to_thread.run_sync(callback.received.wait, 300):
            raise SystemExit("No answer from the browser within 5 minutes.")
        params = callback.params
        if "error" in params:
            raise SystemExit(f"Authorization refused: {params['error']}")
        return AuthorizationCodeResult(code=params["code"], state=params.get("state"), iss=params.get("iss"))

    auth = OAuthClientProvider(
        server_url=server_url,
        client_metadata=OAuthClientMetadata(
            redirect_uris=[callback.redirect_uri], client_name="Keygrant example client"
        ),
        storage=MemoryStorage(),
        redirect_handler=open_browser,
        callback_handler=wait_for_callback,
    )
    try:
        async with httpx2.AsyncClient(auth=auth, timeout=30) as http:
            async with Client(streamable_http_client(server_url, http_client=http)) as client:
                result = await client.call_tool("whoami", {})
    finally:
        callback.shutdown()
    print("\n".join(block.text for block in result.content if block.type == "text"))


if __name__ == "__main__":
    anyio.run(main, sys.argv[1] if len(sys.argv) > 1 else "http://127.0.0.1:9000/mcp")
