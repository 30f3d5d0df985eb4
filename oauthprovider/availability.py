"""Health checks for load balancers, and how Keygrant answers while its database is down.

- `/healthz` (liveness) touches nothing: 200 while the process serves.
- `/readyz` (readiness) asks the database within its short timeouts: 200, or
  503 while it does not answer. Not the shared cache: an instance whose cache
  is down still serves everything (accounts/shared_cache.py), and a readiness
  check that failed on a cache outage would make a load balancer take every
  instance out at once. Neither says anything about the configuration;
  details go to the log. Both answer before any other middleware, so a load balancer
  probing over plain HTTP with its own Host header gets neither an HTTPS
  redirect nor a DisallowedHost error.
- A database that refuses or drops connections makes a request fail with
  OperationalError or InterfaceError. `server_error` (the 500 handler)
  answers those as what they are, a brief outage: 503 with Retry-After; the
  protocol's JSON error `temporarily_unavailable` on the machine endpoints
  (no-store, CORS kept) so clients retry; a page for people that says their
  action was not saved and can be repeated. Every write is one transaction,
  so nothing was half-written.
"""

import logging
import sys

from django.db import DatabaseError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse, HttpResponseServerError, JsonResponse
from django.template import loader

logger = logging.getLogger(__name__)

RETRY_AFTER_SECONDS = 5
# Machine endpoints answer in JSON; everything else is a page for people.
_PAGES_UNDER_GETKEYS = ("/getKeys/authorize", "/getKeys/device")
_MACHINE_PREFIXES = ("/getKeys/", "/v1/", "/.well-known/")
_NOT_CORS = ("/getKeys/introspect",)  # server to server, not CORS-open


class HealthCheckMiddleware:
    """Answers /healthz and /readyz first of all (see the module docstring)."""

    def __init__(self, get_response) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path == "/healthz":
            return _plain(200, "ok")
        if request.path == "/readyz":
            return _plain(200, "ready") if _database_answers() else _plain(503, "unavailable")
        return self.get_response(request)


def _plain(status: int, text: str) -> HttpResponse:
    response = HttpResponse(text + "\n", status=status, content_type="text/plain; charset=utf-8")
    response["Cache-Control"] = "no-store"
    return response


def _database_answers() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError as exc:
        logger.warning("readiness: the database does not answer (%s)", type(exc).__name__)
        return False
    return True


def is_outage(exc: BaseException | None) -> bool:
    """A database that is down or unreachable, as opposed to a bug."""
    return isinstance(exc, (OperationalError, InterfaceError))


def server_error(request: HttpRequest) -> HttpResponse:
    """Django's 500 handler: an outage is a 503 the client can act on, anything else a 500.

    Called inside Django's `except` block, so sys.exc_info() is the error.
    Renders without the request context: nothing here may need the database.
    """
    if not is_outage(sys.exc_info()[1]):
        return HttpResponseServerError(loader.render_to_string("500.html"))
    if request.path.startswith(_MACHINE_PREFIXES) and not request.path.startswith(_PAGES_UNDER_GETKEYS):
        response = JsonResponse(
            {
                "error": "temporarily_unavailable",
                "error_description": "The service is briefly unavailable; retry in a few seconds.",
            },
            status=503,
        )
        response["Cache-Control"] = "no-store"
        if not request.path.startswith(_NOT_CORS):
            response["Access-Control-Allow-Origin"] = "*"
    else:
        page = loader.render_to_string("503.html", {"was_post": request.method == "POST"})
        response = HttpResponse(page, status=503)
        response["Cache-Control"] = "no-store"
    response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response
