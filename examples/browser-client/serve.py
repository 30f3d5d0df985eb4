"""Serve the example client on http://localhost:8001 (bound to 127.0.0.1 only).

    python examples/browser-client/serve.py [--port 8001] [--provider http://127.0.0.1:8000]

A plain static server (the standard library's), plus `Cache-Control: no-store`
so edits show at once. The app must be opened as http://localhost:<port>:
its client_id is the hostname it runs on, and a hostname other than the
provider's (127.0.0.1) makes the flow really cross-site.
"""

import argparse
import functools
import sys
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PROVIDER = "http://127.0.0.1:8000"  # keep in step with config.js


class Handler(SimpleHTTPRequestHandler):
    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:
        if self.server.quiet:
            return
        super().log_message(format, *args)


def make_server(
    *, port: int, directory: Path = HERE, quiet: bool = False, handler: type[Handler] = Handler
) -> ThreadingHTTPServer:
    """A server on 127.0.0.1:<port> (0: any free port) serving `directory`."""
    server = ThreadingHTTPServer(("127.0.0.1", port), functools.partial(handler, directory=str(directory)))
    server.quiet = quiet
    server.daemon_threads = True
    return server


def app_url(*, port: int, provider: str = DEFAULT_PROVIDER) -> str:
    url = f"http://localhost:{port}/"
    if provider.rstrip("/") != DEFAULT_PROVIDER:
        url += f"?provider={provider}"
    return url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--provider", default=DEFAULT_PROVIDER, help="the provider's base URL (its issuer)")
    parser.add_argument("--quiet", action="store_true", help="print nothing (no URL, no request log)")
    args = parser.parse_args()
    try:
        server = make_server(port=args.port, quiet=args.quiet)
    except OSError as exc:
        sys.exit(f"example client: cannot listen on 127.0.0.1:{args.port}: {exc.strerror}")
    if not args.quiet:
        print(f"Example client: {app_url(port=args.port, provider=args.provider)}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
