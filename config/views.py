"""The site's error pages (handler400/403/404 in config/urls.py; the 500 handler is oauthprovider.availability's).

Django's own handlers run the CSRF check of a POST (`requires_csrf_token`),
which reads the body: a `multipart/form-data` body without a boundary then
raised inside the 404 handler, and the answer became a 500. These render
the same templates without reading the request body.
"""

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest
from django.shortcuts import render
from django.template import loader


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    # Without the request, as Django does: it may be the request itself that is bad (its Host header).
    return HttpResponseBadRequest(loader.get_template("400.html").render())


def permission_denied(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "403.html", status=403)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    return render(request, "404.html", status=404)
