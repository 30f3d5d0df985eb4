"""CSRF protection for the consent form, which is posted with `Origin: null`.

DESIGN.md has the consent page send `Referrer-Policy: no-referrer`. Under
that policy browsers send `Origin: null` (and no Referer) with the form's
POST, which Django's origin check refuses. For this one form we accept
that `null` origin and keep everything else: the CSRF token check, the
SameSite session cookie, a `Sec-Fetch-Site` check that refuses cross-site
and cross-origin posts, and the session-bound request id the form carries.
"""

from django.http import HttpRequest
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.decorators import decorator_from_middleware

# Sent by every current browser; absent from non-browser clients.
_ALLOWED_FETCH_SITES = {"same-origin", "none"}


class ConsentCsrfMiddleware(CsrfViewMiddleware):
    def _origin_verified(self, request: HttpRequest) -> bool:
        if request.META.get("HTTP_ORIGIN") == "null":
            return True
        return super()._origin_verified(request)

    def process_view(self, request: HttpRequest, callback, callback_args, callback_kwargs):
        site = request.headers.get("Sec-Fetch-Site")
        if request.method == "POST" and site is not None and site not in _ALLOWED_FETCH_SITES:
            return self._reject(request, f"Sec-Fetch-Site is {site}")
        return super().process_view(request, callback, callback_args, callback_kwargs)


consent_csrf_protect = decorator_from_middleware(ConsentCsrfMiddleware)
