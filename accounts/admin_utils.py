"""Pieces the Keygrant admin pages share: typed-in filters and confirmation pages.

Used by accounts/admin.py and oauthprovider/admin.py. Nothing here imports
oauthprovider (dependencies point one way).
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.views.main import ERROR_FLAG
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.utils.translation import ngettext

from accounts.clients import ascii_host

# Actions that work from the list (on the selected rows) and from one row's page.
BOTH_LOCATIONS = [admin.ActionLocation.CHANGE_LIST, admin.ActionLocation.CHANGE_FORM]
_CHANGE_FORM_ACTION_FIELD = f"{admin.ActionLocation.CHANGE_FORM.value}-action"


def host_a_label(value: str) -> str:
    """What an operator typed, as the stored form of a hostname (IDNA A-labels), or as typed."""
    value = value.strip().lower()
    try:
        return ascii_host(value)
    except ValueError:
        return value


class NulSafeChangelistMixin:
    """A NUL byte anywhere in a list's query gets Django's "invalid filter" page, not a 500.

    PostgreSQL refuses NUL in text, so `?client=%00` or `?kind__exact=%00`
    would fail in the database; no stored value contains one, so nothing
    could match anyway.
    """

    def changelist_view(self, request: HttpRequest, extra_context=None) -> HttpResponse:
        if any("\x00" in name or "\x00" in value for name, values in request.GET.lists() for value in values):
            return HttpResponseRedirect(f"{request.path}?{ERROR_FLAG}=1")
        return super().changelist_view(request, extra_context)


class ReadOnlyAdminMixin:
    """Rows change only through services (revoke actions), never by editing:
    no add, no change form, no delete (the audit trail stays whole)."""

    def has_add_permission(self, request, obj=None) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


class InputFilter(admin.SimpleListFilter):
    """A sidebar filter with a text box instead of a list of every value.

    Lists of clients or users grow with the data; a typed value costs no
    query to render and uses the index behind `field`.
    """

    template = "admin/keygrant/input_filter.html"
    field: str = ""

    def lookups(self, request, model_admin):
        # One placeholder: SimpleListFilter shows nothing without a choice.
        return [("", "")]

    def normalise(self, value: str) -> str:
        return value.strip()

    def queryset(self, request, queryset):
        value = self.normalise(self.value() or "")
        return queryset.filter(**{self.field: value}) if value else None

    def choices(self, changelist) -> Iterator[dict[str, Any]]:
        others = [
            (name, value)
            for name, values in changelist.filter_params.items()
            if name != self.parameter_name
            for value in values
        ]
        yield {
            "parameter_name": self.parameter_name,
            "value": self.value() or "",
            "others": others,
            "clear_query_string": changelist.get_query_string(remove=[self.parameter_name]),
        }


class ClientInputFilter(InputFilter):
    title = "client hostname"
    parameter_name = "client"

    def normalise(self, value: str) -> str:
        return host_a_label(value)


class UsernameInputFilter(InputFilter):
    title = "user (username)"
    parameter_name = "username"


def client_filter(field: str) -> type[InputFilter]:
    return type("ClientFilter", (ClientInputFilter,), {"field": field})


def username_filter(field: str, title: str = "user (username)") -> type[InputFilter]:
    return type("UsernameFilter", (UsernameInputFilter,), {"field": field, "title": title})


class HostnameSearchMixin:
    """Search also finds a hostname typed in Unicode (stored as A-labels)."""

    hostname_search_field = ""

    def get_search_results(self, request, queryset, search_term):
        filtered = queryset
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        term = search_term.strip()
        if self.hostname_search_field and term and not term.isascii():
            queryset |= filtered.filter(**{self.hostname_search_field: host_a_label(term)})
        return queryset, may_have_duplicates


# --- Confirmation pages for actions ---------------------------------------------------


def warn_already_revoked(modeladmin: admin.ModelAdmin, request: HttpRequest, *, count: int, noun: str) -> None:
    """Tell the operator that `count` selected rows (keys, grants) were revoked before and left alone."""
    if count:
        text = ngettext("%(count)d %(noun)s was already revoked.", "%(count)d %(noun)ss were already revoked.", count)
        modeladmin.message_user(request, text % {"count": count, "noun": noun}, messages.WARNING)


@dataclass(frozen=True)
class ConfirmRow:
    text: str
    note: str = ""


def is_confirmed(request: HttpRequest) -> bool:
    """True on the second POST of an action, sent by its confirmation page."""
    return request.POST.get("post") == "yes"


def confirmation_page(
    modeladmin: admin.ModelAdmin,
    request: HttpRequest,
    queryset: QuerySet | list,
    *,
    action: str,
    title: str,
    intro: str,
    rows: Iterable[ConfirmRow],
    explanation: Iterable[str],
    submit_label: str,
) -> TemplateResponse:
    """An intermediate page like Django's delete confirmation.

    The form posts back to the page the action came from (the list or one
    object's page), with the same action and selection plus `post=yes`.
    """
    from_change_form = _CHANGE_FORM_ACTION_FIELD in request.POST
    context = {
        **modeladmin.admin_site.each_context(request),
        "opts": modeladmin.model._meta,
        "title": title,
        "intro": intro,
        "rows": list(rows),
        "explanation": list(explanation),
        "submit_label": submit_label,
        "objects": list(queryset),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
        "action_field": _CHANGE_FORM_ACTION_FIELD if from_change_form else "action",
        "action": action,
        "back_url": request.get_full_path(),
    }
    return TemplateResponse(request, "admin/keygrant/confirm_action.html", context)
