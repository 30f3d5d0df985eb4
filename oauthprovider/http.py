"""HTTP plumbing shared by the machine-facing endpoints: CORS and JSON errors."""

import functools
import re
from collections.abc import Callable, Iterable

from django.core.exceptions import BadRequest, RequestDataTooBig, TooManyFieldsSent
from django.http import HttpRequest, HttpResponse, JsonResponse, RawPostDataException

from oauthprovider.protocol import OAuthError

View = Callable[..., HttpResponse]
_HEADER_LIST = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]+(\s*,\s*[A-Za-z0-9!#$%&'*+.^_`|~-]+)*")


def public_cors(*, methods: Iterable[str], expose: Iterable[str] = ()) -> Callable[[View], View]:
    """CORS for any origin without credentials, preflight included (DESIGN.md "Discovery").

    For endpoints browser apps call directly (token, metadata, the API). No
    cookie is read on them, so allowing every origin exposes nothing.
    """
    allowed = ", ".join(sorted({m.upper() for m in methods} | {"OPTIONS"}))
    expose_header = ", ".join(expose)

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method == "OPTIONS":
                response = HttpResponse(status=204)
                response["Access-Control-Allow-Methods"] = allowed
                requested = request.headers.get("Access-Control-Request-Headers", "").strip()
                response["Access-Control-Allow-Headers"] = (
                    requested if _HEADER_LIST.fullmatch(requested) else "Authorization, Content-Type"
                )
                response["Access-Control-Max-Age"] = "86400"
            else:
                response = view(request, *args, **kwargs)
            response["Access-Control-Allow-Origin"] = "*"
            if expose_header:
                response["Access-Control-Expose-Headers"] = expose_header
            return response

        return wrapper

    return decorator


def allow_methods(*methods: str) -> Callable[[View], View]:
    """Other methods get 405 with an Allow header and a JSON error body (RFC 9110 section 15.5.6)."""
    allowed = {m.upper() for m in methods}
    allow_header = ", ".join(sorted(allowed | {"OPTIONS"}))

    def decorator(view: View) -> View:
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if request.method not in allowed:
                response = JsonResponse(
                    {"error": "invalid_request", "error_description": "Method not allowed."}, status=405
                )
                response["Allow"] = allow_header
                return no_store(response)
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


def no_store(response: HttpResponse) -> HttpResponse:
    """RFC 6749 section 5.1: responses carrying (or refusing) credentials are never cached."""
    response["Cache-Control"] = "no-store"
    response["Pragma"] = "no-cache"
    return response


def oauth_error_response(exc: OAuthError, *, headers: dict[str, str] | None = None) -> JsonResponse:
    """RFC 6749 section 5.2: a JSON error body with a fixed description (no input echoed)."""
    return no_store(JsonResponse(exc.as_dict(), status=exc.status, headers=headers))


FORM = "application/x-www-form-urlencoded"


def form_params(request: HttpRequest) -> dict[str, list[str]]:
    """The parameters of a form-encoded POST, every value kept (repeats are errors later).

    RFC 6749 Appendix B: the body is UTF-8. A body declared in another
    charset, even one Python does not know, is refused rather than guessed at.
    """
    if (request.content_type or "").lower() != FORM:
        raise OAuthError("invalid_request", f"The request body must be {FORM}.")
    if request.content_params.get("charset", "utf-8").lower() != "utf-8":
        raise OAuthError("invalid_request", f"The request body must be UTF-8 {FORM}.")
    try:
        return dict(request.POST.lists())
    except (RequestDataTooBig, TooManyFieldsSent, RawPostDataException):
        raise OAuthError("invalid_request", "The request body is too large.") from None
    except BadRequest:  # e.g. a charset other than UTF-8: still a JSON error with CORS (RFC 6749 5.2)
        raise OAuthError("invalid_request", f"The request body must be UTF-8 {FORM}.") from None
