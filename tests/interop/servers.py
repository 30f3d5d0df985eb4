"""Servers the interoperability tests run beside Keygrant's live server.

Each listens on a socket bound (port 0, 127.0.0.1) and listening before its
thread starts, so a client that connects early waits in the backlog instead
of racing the start-up; each is stopped in the fixture's teardown.
"""

import importlib.util
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType

import uvicorn

EXAMPLES = Path(__file__).resolve().parents[2] / "examples" / "mcp-server"
THREAD_JOIN_SECONDS = 10


def listening_socket() -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(64)
    return sock


def free_port() -> int:
    """A port nothing listens on, for redirect URIs that are never fetched."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def load_example(name: str) -> ModuleType:
    """examples/mcp-server/<name>.py, imported by path (the folder is not a package)."""
    spec = importlib.util.spec_from_file_location(f"keygrant_example_mcp_{name}", EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def load_example_server() -> ModuleType:
    return load_example("server")


@contextmanager
def uvicorn_in_thread(app, sock: socket.socket) -> Iterator[None]:
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True, name="example-mcp")
    thread.start()
    try:
        yield
    finally:
        server.should_exit = True
        thread.join(THREAD_JOIN_SECONDS)
        sock.close()
        assert not thread.is_alive(), "the example MCP server did not stop"


class StaticJsonServer(ThreadingHTTPServer):
    """Serves JSON documents by path (a client's metadata document, say) and counts fetches."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _JsonHandler)
        self.documents: dict[str, dict] = {}
        self.fetches: list[str] = []

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _JsonHandler(BaseHTTPRequestHandler):
    server: StaticJsonServer

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.server.fetches.append(self.path)
        document = self.server.documents.get(self.path)
        body = json.dumps(document or {"error": "not found"}).encode()
        self.send_response(200 if document is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args) -> None:
        pass


@contextmanager
def json_server_in_thread() -> Iterator[StaticJsonServer]:
    server = StaticJsonServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True, name="json-documents")
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(THREAD_JOIN_SECONDS)
