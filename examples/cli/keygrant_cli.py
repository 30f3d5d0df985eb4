"""An example command-line app that gets one of your Keygrant API keys and uses it.

Standard library only (Python 3.12+). Two ways to sign in, both PKCE-free of
secrets and both ending with the key stored in a file only you can read:

- the browser flow: a one-shot HTTP server on 127.0.0.1 (a free port) receives
  the redirect back from Keygrant (RFC 8252 section 7.3), with PKCE S256, a
  `state` and the `iss` check (RFC 9207);
- the device flow (RFC 8628): for sessions without a browser (SSH, CI, a
  container, no display), or on `--device`. You approve on any device that
  has one; this program polls the token endpoint.

    python keygrant_cli.py login [--device | --browser] [--issuer URL]
    python keygrant_cli.py whoami
    python keygrant_cli.py logout

The app names itself `keygrant-example-cli`: Keygrant accepts any short name
from an app that comes back to a loopback address, and shows it to you as a
name nobody verified. Endpoints come from the issuer's metadata
(/.well-known/oauth-authorization-server, RFC 8414).
"""

import argparse
import base64
import hashlib
import http.server
import json
import os
import secrets
import sys
import tempfile
import threading
import time
import webbrowser
from pathlib import Path
from urllib.error import HTTPError, URLError
from urllib.parse import parse_qs, urlencode, urlsplit
from urllib.request import Request, urlopen

CLIENT_ID = "keygrant-example-cli"
SCOPE = "key:read"
DEFAULT_ISSUER = "http://127.0.0.1:8000"
DEVICE_GRANT = "urn:ietf:params:oauth:grant-type:device_code"
HTTP_TIMEOUT = 15  # seconds, for each request to Keygrant
DEFAULT_WAIT = 600  # seconds a sign-in may take, whichever flow
SLOW_DOWN_STEP = 5  # RFC 8628 section 3.5
MAX_BACKOFF = 60  # seconds between polls when Keygrant cannot be reached

# What each OAuth error code means for the person at the terminal (RFC 6749
# 4.1.2.1 and 5.2, RFC 8628 3.5, RFC 8707 2). Keygrant's own description follows.
ERRORS = {
    "access_denied": "the request was denied on the consent page; nothing was handed out",
    "expired_token": "the code expired before it was approved (or the approval was not picked up); run login again",
    "authorization_pending": "nobody has approved the code yet",
    "slow_down": "this program polled too often",
    "invalid_grant": "the code was refused: expired, already used, or issued to another app; run login again",
    "invalid_request": "Keygrant found the request malformed (a bug in this program)",
    "invalid_client": "Keygrant does not accept this app's client_id",
    "unauthorized_client": "this app may not use that kind of sign-in",
    "unsupported_grant_type": "this Keygrant does not offer that kind of sign-in (the device flow may be turned off)",
    "unsupported_response_type": "this Keygrant does not offer the authorization code flow",
    "invalid_scope": f"Keygrant does not offer the scope {SCOPE}",
    "invalid_target": "Keygrant does not serve the resource this app asked for",
    "server_error": "Keygrant failed; try again later",
    "temporarily_unavailable": "Keygrant is busy; try again later",
}


class CliError(Exception):
    """Something the person at the terminal should read; the program exits with status 1."""


def oauth_failure(error: str, description: str = "") -> CliError:
    meaning = ERRORS.get(error, "Keygrant refused the request")
    said = f" (Keygrant: {description})" if description else ""
    return CliError(f"{error}: {meaning}{said}")


def say(text: str) -> None:
    """Instructions go to stderr, so stdout carries only the result."""
    print(text, file=sys.stderr, flush=True)


# --- HTTP, JSON, metadata ---------------------------------------------------------------


def call(url: str, *, form: dict[str, str] | None = None, headers: dict[str, str] | None = None):
    """GET (or POST a form) and return (status, JSON body, response headers).

    Error statuses are answers too: OAuth errors come as 400 with a JSON body.
    """
    data = urlencode(form).encode() if form is not None else None
    request = Request(url, data=data, headers={"Accept": "application/json", **(headers or {})})
    try:
        with urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, _json(response.read()), response.headers
    except HTTPError as error:
        with error:
            return error.code, _json(error.read()), error.headers
    except (URLError, TimeoutError, ConnectionError) as error:
        reason = getattr(error, "reason", error)
        raise ConnectionError(f"cannot reach {url}: {reason}") from None


def _json(raw: bytes) -> dict:
    try:
        body = json.loads(raw or b"{}")
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def discover(issuer: str) -> dict:
    """The issuer's metadata (RFC 8414), whose `issuer` must be the one asked for (section 3.3)."""
    try:
        status, metadata, _ = call(f"{issuer}/.well-known/oauth-authorization-server")
    except ConnectionError as error:
        raise CliError(str(error)) from None
    if status != 200:
        raise CliError(f"{issuer} has no OAuth metadata (HTTP {status}); is it a Keygrant?")
    if metadata.get("issuer") != issuer:
        raise CliError(f"the metadata at {issuer} names another issuer: {metadata.get('issuer')!r}")
    return metadata


def token_request(metadata: dict, form: dict[str, str]):
    try:
        return call(metadata["token_endpoint"], form=form)
    except ConnectionError as error:
        raise CliError(str(error)) from None


def key_from(status: int, body: dict) -> str:
    if status == 200 and isinstance(body.get("access_token"), str):
        return body["access_token"]
    if "error" in body:
        raise oauth_failure(str(body["error"]), str(body.get("error_description", "")))
    raise CliError(f"the token endpoint answered HTTP {status} without a key")


# --- The browser flow (RFC 6749 4.1, RFC 7636, RFC 8252) -----------------------------------------


class CallbackServer(http.server.HTTPServer):
    """Listens on a free loopback port for the one redirect that carries our `state`."""

    def __init__(self, state: str) -> None:
        super().__init__(("127.0.0.1", 0), CallbackHandler)
        self.state = state
        self.answer: dict[str, str] = {}
        self.answered = threading.Event()

    @property
    def redirect_uri(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/callback"


class CallbackHandler(http.server.BaseHTTPRequestHandler):
    server: CallbackServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        url = urlsplit(self.path)
        if url.path != "/callback":
            return self._reply(404, "Not found.")
        query = {name: values[0] for name, values in parse_qs(url.query).items()}
        # Any page the browser visits could send it here: only our own request's answer counts.
        if self.server.answered.is_set() or not secrets.compare_digest(
            query.get("state", "").encode(), self.server.state.encode()
        ):
            return self._reply(400, "This answer does not belong to the sign-in the terminal is waiting for.")
        self.server.answer = query
        self.server.answered.set()
        if "error" in query:
            return self._reply(200, "Not signed in. You can close this tab; the terminal says why.")
        return self._reply(200, "Done. You can close this tab and return to the terminal.")

    def _reply(self, status: int, text: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Referrer-Policy", "no-referrer")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass  # the query holds the code: keep it off the terminal


def pkce_pair() -> tuple[str, str]:
    """A verifier (43 characters of base64url) and its S256 challenge (RFC 7636 4.1-4.2)."""
    verifier = secrets.token_urlsafe(32)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def browser_login(metadata: dict, *, wait: float, fall_back_to_device: bool) -> str | None:
    """The key, through the person's browser; None when no browser opened and the device flow should run."""
    verifier, challenge = pkce_pair()
    state = secrets.token_urlsafe(16)
    server = CallbackServer(state)
    thread = threading.Thread(target=server.serve_forever, name="callback", daemon=True)
    thread.start()
    try:
        url = (
            metadata["authorization_endpoint"]
            + "?"
            + urlencode(
                {
                    "response_type": "code",
                    "client_id": CLIENT_ID,
                    "redirect_uri": server.redirect_uri,
                    "scope": SCOPE,
                    "code_challenge": challenge,
                    "code_challenge_method": "S256",
                    "state": state,
                }
            )
        )
        opened = _open_browser(url)
        if not opened and fall_back_to_device:
            say("No browser could be opened here: using the device flow instead.")
            return None
        say(("Your browser should open. If it does not, open" if opened else "Open") + f" this address:\n\n  {url}\n")
        say(f"Waiting for you to approve (at most {int(wait)} seconds) ...")
        if not server.answered.wait(timeout=wait):
            raise CliError(f"no answer from the browser within {int(wait)} seconds; run login again")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
    answer = server.answer
    # RFC 9207: an answer without the right `iss` may come from another provider.
    if answer.get("iss") != metadata["issuer"] and (
        "iss" in answer or metadata.get("authorization_response_iss_parameter_supported")
    ):
        raise CliError("the answer does not come from this issuer (wrong or missing iss); nothing was used")
    if "error" in answer:
        raise oauth_failure(answer["error"], answer.get("error_description", ""))
    if not answer.get("code"):
        raise CliError("the answer carries no code")
    status, body, _ = token_request(
        metadata,
        {
            "grant_type": "authorization_code",
            "code": answer["code"],
            "client_id": CLIENT_ID,
            "redirect_uri": server.redirect_uri,
            "code_verifier": verifier,
        },
    )
    return key_from(status, body)


def _open_browser(url: str) -> bool:
    try:
        return webbrowser.open(url)
    except webbrowser.Error:
        return False


def why_no_browser() -> str | None:
    """Why this session probably cannot show a browser to its person, or None if it can."""
    env = os.environ
    if env.get("BROWSER"):
        return None  # someone said how to open one (remote editors forward it to your desktop)
    if env.get("SSH_CONNECTION") or env.get("SSH_CLIENT") or env.get("SSH_TTY"):
        return "this is an SSH session"
    if env.get("CI", "").lower() not in ("", "0", "false"):
        return "this is a CI job"
    if Path("/.dockerenv").exists() or Path("/run/.containerenv").exists():
        return "this runs in a container"
    if sys.platform not in ("darwin", "win32") and not (env.get("DISPLAY") or env.get("WAYLAND_DISPLAY")):
        return "there is no graphical display"
    return None


# --- The device flow (RFC 8628) --------------------------------------------------------------


def device_login(metadata: dict, *, wait: float) -> str:
    """The key, approved by the person on another device while this program polls."""
    endpoint = metadata.get("device_authorization_endpoint")
    if not endpoint:
        raise CliError(f"{metadata['issuer']} does not offer the device flow; try login --browser")
    try:
        status, started, _ = call(endpoint, form={"client_id": CLIENT_ID, "scope": SCOPE})
    except ConnectionError as error:
        raise CliError(str(error)) from None
    if status != 200:
        raise oauth_failure(str(started.get("error", f"HTTP {status}")), str(started.get("error_description", "")))
    say(f"To sign in, open {started['verification_uri']} on any device and enter the code\n")
    say(f"    {started['user_code']}\n")
    if started.get("verification_uri_complete"):
        say(f"or open {started['verification_uri_complete']}\n")
    say("Approve only if the code there matches the one above.")
    interval = max(int(started.get("interval") or 5), 1)
    wait = min(float(started.get("expires_in") or wait), wait)
    deadline = time.monotonic() + wait
    say(f"Waiting for approval (at most {int(wait)} seconds) ...")
    while True:
        # Section 3.5: wait first, then poll; each slow_down adds 5 seconds for good.
        if time.monotonic() + interval > deadline:
            raise CliError("nobody approved the code in time; run login again")
        time.sleep(interval)
        form = {"grant_type": DEVICE_GRANT, "device_code": started["device_code"], "client_id": CLIENT_ID}
        try:
            status, body, headers = call(metadata["token_endpoint"], form=form)
        except ConnectionError as error:
            interval = min(interval * 2, MAX_BACKOFF)  # section 3.5: back off while unreachable
            say(f"{error}; retrying in {interval} seconds")
            continue
        error = body.get("error")
        if error == "authorization_pending":
            continue
        if error == "slow_down":
            interval += SLOW_DOWN_STEP
            if status == 429:  # Keygrant's per-address throttle also says when to come back
                interval = max(interval, _seconds(headers.get("Retry-After")))
            continue
        return key_from(status, body)


def _seconds(value: str | None) -> int:
    try:
        return int(value or 0)
    except ValueError:
        return 0


# --- Where the key is kept --------------------------------------------------------------------


def default_key_file() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config"
    return Path(base) / CLIENT_ID / "key.json"


def save_key(path: Path, *, issuer: str, key: str) -> None:
    """Write the key readable by its owner only (0600, folder 0700), all at once."""
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".key-")  # created 0600
    try:
        with os.fdopen(fd, "w") as file:
            json.dump({"issuer": issuer, "client_id": CLIENT_ID, "access_token": key}, file)
        os.chmod(temporary, 0o600)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def load_key(path: Path) -> dict:
    try:
        stored = json.loads(path.read_text())
    except FileNotFoundError:
        raise CliError(f"not signed in (no {path}); run login first") from None
    except ValueError:
        raise CliError(f"{path} is not a key file; run login again") from None
    if not isinstance(stored, dict) or not isinstance(stored.get("access_token"), str):
        raise CliError(f"{path} is not a key file; run login again")
    return stored


# --- Commands ---------------------------------------------------------------------------------


def whoami(issuer: str, key: str) -> str:
    """One line about the key's owner, from GET /v1/me (the key itself is never printed)."""
    try:
        status, me, _ = call(f"{issuer}/v1/me", headers={"x-api-key": key})
    except ConnectionError as error:
        raise CliError(str(error)) from None
    if status == 401:
        raise CliError("the stored key no longer works (revoked?); run login again")
    if status != 200:
        raise CliError(f"{issuer}/v1/me answered HTTP {status}")
    user, key_info = me["user"], me["key"]
    name = f" ({user['name']})" if user.get("name") else ""
    return f'{user["username"]}{name}, key {key_info["prefix"]}... named "{key_info["name"]}", at {issuer}'


def command_login(args: argparse.Namespace) -> int:
    issuer = args.issuer.rstrip("/")
    metadata = discover(issuer)
    key = None
    if args.device:
        key = device_login(metadata, wait=args.timeout)
    else:
        reason = None if args.browser else why_no_browser()
        if reason is None:
            key = browser_login(metadata, wait=args.timeout, fall_back_to_device=not args.browser)
        else:
            say(f"Using the device flow: {reason} (login --browser forces the browser flow).")
        if key is None:
            key = device_login(metadata, wait=args.timeout)
    save_key(args.key_file, issuer=issuer, key=key)
    print(f"Signed in as {whoami(issuer, key)}")
    say(f"The key is stored in {args.key_file} (readable by you only).")
    return 0


def command_whoami(args: argparse.Namespace) -> int:
    stored = load_key(args.key_file)
    print(whoami(stored["issuer"], stored["access_token"]))
    return 0


def command_logout(args: argparse.Namespace) -> int:
    """Give the key back (RFC 7009), then forget it."""
    stored = load_key(args.key_file)
    endpoint = discover(stored["issuer"]).get("revocation_endpoint")
    if endpoint:
        form = {"token": stored["access_token"], "token_type_hint": "access_token", "client_id": CLIENT_ID}
        try:
            status, body, _ = call(endpoint, form=form)
        except ConnectionError as error:
            raise CliError(f"{error}; the key is still stored") from None
        if status != 200:
            raise oauth_failure(str(body.get("error", f"HTTP {status}")), str(body.get("error_description", "")))
    args.key_file.unlink()
    print("Signed out: the key was given back and removed from this computer.")
    return 0


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="keygrant_cli.py", description="Get a Keygrant API key and use it.")
    commands = top.add_subparsers(dest="command", required=True)

    def add(name: str, run, help: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help)
        sub.set_defaults(run=run)
        sub.add_argument(
            "--key-file", type=Path, default=default_key_file(), help="where the key is kept (default: %(default)s)"
        )
        return sub

    login = add("login", command_login, "sign in and store a key")
    login.add_argument(
        "--issuer",
        default=os.environ.get("KEYGRANT_ISSUER", DEFAULT_ISSUER),
        help="Keygrant's base URL (default: $KEYGRANT_ISSUER or %(default)s)",
    )
    flow = login.add_mutually_exclusive_group()
    flow.add_argument("--device", action="store_true", help="use the device flow (approve on another device)")
    flow.add_argument("--browser", action="store_true", help="use the browser flow even where none seems available")
    login.add_argument(
        "--timeout", type=float, default=DEFAULT_WAIT, help="seconds to wait for approval (default: %(default)s)"
    )
    add("whoami", command_whoami, "show whose key is stored")
    add("logout", command_logout, "give the key back and forget it")
    return top


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except CliError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
