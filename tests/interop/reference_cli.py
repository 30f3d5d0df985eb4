"""A client that signs in exactly the way the reference provider's own CLI does (test-only).

Our own code, written from a description of that CLI's requests: what has to
match is what goes over the wire, and DESIGN.md promises that it works
unchanged. Standard library only, as the CLI is (urllib.request, http.server,
webbrowser):

- browser flow: a callback server on 127.0.0.1, port 0; the redirect URI
  names it `http://localhost:<port>/callback`; `client_id=localhost`,
  `scope=key:read`, `resource=http://localhost:<port>` (its own origin),
  PKCE S256 from a `secrets.token_urlsafe(32)` verifier, and **no state**.
  The code exchange repeats client_id, redirect_uri and resource.
- device flow: `client_id=localhost, scope=key:read`; shows the codes; then
  sleeps the interval *before* each poll; on an HTTP error reads the JSON
  `error`: `authorization_pending` polls on, `slow_down` adds 5 seconds,
  anything else (`expired_token`, `access_denied`, ...) ends it; gives up
  after `expires_in`.

Nothing is checked that the reference CLI does not check (no `state`, no
`iss`): Keygrant has to work for it as it is.
"""

import base64
import hashlib
import json
import secrets
import threading
import time
import webbrowser
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.error import HTTPError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

CLIENT_ID = "localhost"
SCOPE = "key:read"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 30


class SignInFailed(Exception):
    """The CLI gave up; `error` is the OAuth error code it read (or a word of its own)."""

    def __init__(self, error: str) -> None:
        super().__init__(error)
        self.error = error


def post_form(url: str, fields: dict[str, str]) -> dict:
    """POST form-encoded and read the JSON answer; HTTP errors raise HTTPError, as urlopen does."""
    request = Request(url, data=urlencode(fields).encode(), method="POST")
    request.add_header("Content-Type", "application/x-www-form-urlencoded")
    with urlopen(request, timeout=HTTP_TIMEOUT) as response:
        return json.loads(response.read())


def error_code(error: HTTPError) -> str:
    with error:
        try:
            return json.loads(error.read()).get("error", f"http_{error.code}")
        except ValueError:
            return f"http_{error.code}"


# --- Browser flow -------------------------------------------------------------------------


class _CallbackServer(HTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _CallbackHandler)
        self.query: dict[str, str] = {}
        self.done = threading.Event()


class _CallbackHandler(BaseHTTPRequestHandler):
    server: _CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if url.path != "/callback":
            self.send_error(404)
            return
        self.server.query = {name: values[0] for name, values in parse_qs(url.query).items()}
        self.server.done.set()
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<p>Authentication complete. You may close this window.</p>")

    def log_message(self, format: str, *args) -> None:
        pass


class ReferenceCli:
    """One run of the CLI against `base_url`; `sent` keeps every request's form, `heard` every poll's answer."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.sent: list[tuple[str, dict[str, str]]] = []
        self.heard: list[str] = []

    def _post(self, path: str, fields: dict[str, str]) -> dict:
        self.sent.append((path, dict(fields)))
        return post_form(self.base_url + path, fields)

    def browser_login(self, *, open_url: Callable[[str], object] = webbrowser.open, wait: float = 60) -> str:
        server = _CallbackServer()
        port = server.server_address[1]
        thread = threading.Thread(target=server.serve_forever, daemon=True, name="reference-cli-callback")
        thread.start()
        redirect_uri = f"http://localhost:{port}/callback"
        resource = f"http://localhost:{port}"
        verifier = secrets.token_urlsafe(32)
        challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).decode().rstrip("=")
        query = {
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": SCOPE,
            "resource": resource,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        try:
            open_url(f"{self.base_url}/getKeys/authorize?{urlencode(query)}")
            if not server.done.wait(wait):
                raise SignInFailed("timeout")
        finally:
            server.shutdown()
            server.server_close()
            thread.join(5)
        code = server.query.get("code")
        if not code:
            raise SignInFailed(server.query.get("error", "no_code"))
        fields = {
            "grant_type": "authorization_code",
            "code": code,
            "client_id": CLIENT_ID,
            "redirect_uri": redirect_uri,
            "code_verifier": verifier,
            "resource": resource,
        }
        try:
            return self._post("/getKeys/token", fields)["access_token"]
        except HTTPError as error:
            raise SignInFailed(error_code(error)) from None

    def device_login(
        self, *, show: Callable[[dict], object] = print, sleep: Callable[[float], object] = time.sleep
    ) -> str:
        try:
            started = self._post("/getKeys/device/code", {"client_id": CLIENT_ID, "scope": SCOPE})
        except HTTPError as error:
            raise SignInFailed(error_code(error)) from None
        show(started)
        interval = started["interval"]
        give_up_at = time.monotonic() + started["expires_in"]
        fields = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": CLIENT_ID}
        while time.monotonic() < give_up_at:
            sleep(interval)
            try:
                answer = self._post("/getKeys/token", fields)
            except HTTPError as error:
                code = error_code(error)
                self.heard.append(code)
                if code == "authorization_pending":
                    continue
                if code == "slow_down":
                    interval += 5
                    continue
                raise SignInFailed(code) from None
            self.heard.append("access_token")
            return answer["access_token"]
        raise SignInFailed("timeout")
