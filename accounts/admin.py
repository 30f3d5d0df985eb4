"""Admin for users, API keys (masked) and the append-only audit log.

Keys are created by their owners, never here; the admin only revokes them.
Audit events are read-only for everyone, superusers included.
"""

import json

from django.contrib import admin, messages
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.db.models import Q
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.translation import ngettext

from accounts.admin_utils import (
    BOTH_LOCATIONS,
    ConfirmRow,
    HostnameSearchMixin,
    NulSafeChangelistMixin,
    ReadOnlyAdminMixin,
    client_filter,
    confirmation_page,
    is_confirmed,
    username_filter,
    warn_already_revoked,
)
from accounts.audit import RequestContext
from accounts.clients import display_name
from accounts.factor_services import factors_of
from accounts.forms import ThrottledAdminAuthenticationForm
from accounts.models import ApiKey, AuditEvent, Notification, User
from accounts.services import key_revoke
from accounts.views import LoginView

# The admin login counts toward the same failed-login limits as the site's
# (and records login_failed / login_throttled events).
admin.site.login_form = ThrottledAdminAuthenticationForm


class AdminLoginView(LoginView):
    """The admin's login page, on the site's sign-in: after the password, an account with a second
    factor goes through the same second step (accounts/login/verify/), then back to the admin."""

    authentication_form = ThrottledAdminAuthenticationForm
    template_name = "admin/login.html"
    # Django's admin shows "you are signed in as X, who may not see this" rather than redirecting (a loop).
    redirect_authenticated_user = False


def admin_login(request: HttpRequest, extra_context: dict | None = None) -> HttpResponse:
    """AdminSite.login with our two-step LoginView; what Django's does otherwise."""
    site = admin.site
    if request.method == "GET" and site.has_permission(request):
        return HttpResponseRedirect(reverse("admin:index", current_app=site.name))
    context = {
        **site.each_context(request),
        "title": "Log in",
        "subtitle": None,
        "app_path": request.get_full_path(),
        "username": request.user.get_username(),
    }
    if REDIRECT_FIELD_NAME not in request.GET and REDIRECT_FIELD_NAME not in request.POST:
        context[REDIRECT_FIELD_NAME] = reverse("admin:index", current_app=site.name)
    context.update(extra_context or {})
    request.current_app = site.name
    return AdminLoginView.as_view(extra_context=context)(request)


admin.site.login = admin_login


def _changelist_url(name: str, query: str) -> str | None:
    """A filtered changelist URL; None if that admin is not installed."""
    try:
        return f"{reverse(f'admin:{name}_changelist')}?{query}"
    except NoReverseMatch:
        return None


def _user_links(user: User) -> list[tuple[str, str]]:
    # By URL name, not by import: accounts knows nothing of oauthprovider.
    links = [
        ("Keys", _changelist_url("accounts_apikey", f"user__id__exact={user.pk}")),
        ("Grants", _changelist_url("oauthprovider_grant", f"user__id__exact={user.pk}")),
        ("Audit events", _changelist_url("accounts_auditevent", f"subject__id__exact={user.pk}")),
    ]
    if user.is_staff:
        links.append(("Actions as admin", _changelist_url("accounts_auditevent", f"actor__id__exact={user.pk}")))
    return [(url, text) for text, url in links if url]


def key_status(key: ApiKey) -> str:
    """Active, Expired <when> or Revoked <when>: the same words as the keys page."""
    if not key.is_active:
        return f"Revoked {key.revoked_at:%Y-%m-%d %H:%M}"
    if key.is_expired():
        return f"Expired {key.expires_at:%Y-%m-%d %H:%M}"
    return "Active"


def _user_change_link(user: User | None) -> str:
    if user is None:
        return ""
    return format_html('<a href="{}">{}</a>', reverse("admin:accounts_user_change", args=[user.pk]), user.username)


# --- Users ---------------------------------------------------------------------------


@admin.register(User)
class UserAdmin(NulSafeChangelistMixin, DjangoUserAdmin):
    list_display = ("username", "email", "first_name", "last_name", "is_staff", "is_active", "related")
    readonly_fields = ("related", "second_factors")
    delete_confirmation_template = "admin/keygrant/user_delete_confirmation.html"
    fieldsets = (
        *DjangoUserAdmin.fieldsets,
        ("Second factors", {"fields": ("second_factors",)}),
        ("Keys, grants and audit log", {"fields": ("related",)}),
    )

    @admin.display(description="Second factors")
    def second_factors(self, user: User) -> str:
        """What protects the account beyond its password (never a secret): to help with account recovery."""
        if user.pk is None:
            return ""
        factors = factors_of(user)
        parts = [f"{factors.passkeys} passkey{'s' if factors.passkeys != 1 else ''}"]
        parts.append("authenticator app on" if factors.totp else "no authenticator app")
        parts.append(f"{factors.recovery_codes_left} unused recovery codes")
        note = "" if factors.any else " (the password alone signs in)"
        return ", ".join(parts) + note + ". To remove them all: manage.py reset_second_factors (docs/operations.md)."

    @admin.display(description="Keys, grants, events")
    def related(self, user: User) -> str:
        if user.pk is None:
            return ""
        return format_html_join(" · ", '<a href="{}">{}</a>', _user_links(user))


# --- API keys ------------------------------------------------------------------------


class KeyStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("expired", "Expired"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        now = timezone.now()
        match self.value():
            case "active":
                return queryset.filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True)
            case "expired":
                return queryset.filter(revoked_at__isnull=True, expires_at__lte=now)
            case "revoked":
                return queryset.filter(revoked_at__isnull=False)
        return None


class KeyOriginFilter(admin.SimpleListFilter):
    title = "created by"
    parameter_name = "origin"

    def lookups(self, request, model_admin):
        return [("consent", "A consent (for an app)"), ("user", "The user")]

    def queryset(self, request, queryset):
        if self.value() == "consent":
            return queryset.exclude(created_for_client="")
        if self.value() == "user":
            return queryset.filter(created_for_client="")
        return None


@admin.register(ApiKey)
class ApiKeyAdmin(NulSafeChangelistMixin, ReadOnlyAdminMixin, HostnameSearchMixin, admin.ModelAdmin):
    """Masked keys: the prefix only. key_hash and key_encrypted never reach a page."""

    list_display = ("masked_key", "name", "user", "client", "created_at", "last_used_at", "expires_at", "status")
    list_select_related = ("user",)
    hostname_search_field = "created_for_client"
    list_filter = (
        KeyStatusFilter,
        KeyOriginFilter,
        client_filter("created_for_client"),
        username_filter("user__username"),
        "created_at",
    )
    search_fields = ("name", "prefix__startswith", "user__username", "user__email", "created_for_client")
    search_help_text = "Key name, key prefix (kg_…), username, email or the app's hostname."
    date_hierarchy = "created_at"
    fields = (
        "masked_key",
        "name",
        "user",
        "client",
        "created_at",
        "last_used_at",
        "expires_at",
        "networks",
        "revoked_at",
        "status",
        "grants",
    )
    readonly_fields = fields
    actions = ["revoke_keys"]

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("accounts.change_apikey")

    @admin.display(description="key", ordering="prefix")
    def masked_key(self, key: ApiKey) -> str:
        return key.masked

    @admin.display(description="created for app", ordering="created_for_client")
    def client(self, key: ApiKey) -> str:
        return display_name(key.created_for_client) or "—"

    @admin.display(description="status")
    def status(self, key: ApiKey) -> str:
        return key_status(key)

    @admin.display(description="allowed addresses")
    def networks(self, key: ApiKey) -> str:
        return ", ".join(key.allowed_networks) or "Any address"

    @admin.display(description="grants")
    def grants(self, key: ApiKey) -> str:
        links = [
            (url, text)
            for text, url in (
                ("Grants using this key", _changelist_url("oauthprovider_grant", f"key__id__exact={key.pk}")),
                ("Audit events", _changelist_url("accounts_auditevent", f"key_prefix={key.prefix}")),
            )
            if url
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', links)

    @admin.action(
        description="Revoke key",
        description_plural="Revoke selected keys",
        permissions=["revoke"],
        location=BOTH_LOCATIONS,
    )
    def revoke_keys(self, request, queryset):
        keys = list(queryset.select_related("user"))
        if not is_confirmed(request):
            return confirmation_page(
                self,
                request,
                keys,
                action="revoke_keys",
                title="Revoke keys",
                intro=ngettext("Revoke this key?", "Revoke these %(count)d keys?", len(keys)) % {"count": len(keys)},
                rows=[
                    ConfirmRow(
                        f"{key.masked} “{key.name}” of {key.user.username}",
                        "already revoked"
                        if not key.is_active
                        else f"created for {display_name(key.created_for_client)}"
                        if key.created_for_client
                        else "created by the user",
                    )
                    for key in keys
                ],
                explanation=[
                    "Revocation takes effect at once: every app or script using these keys gets 401 "
                    "from the next request on. It cannot be undone; the user can create a new key or "
                    "consent again.",
                    "Grants that handed out these keys stay as they are: revoke the grant too if the "
                    "app should not be trusted any more.",
                ],
                submit_label="Yes, revoke",
            )
        context = RequestContext.from_request(request)
        revoked = sum(
            key_revoke(
                key=key,
                context=context,
                actor_kind=AuditEvent.Actor.ADMIN,
                actor=request.user,
                reason="revoked by an administrator",
            )
            for key in keys
        )
        self.message_user(request, ngettext("Revoked %d key.", "Revoked %d keys.", revoked) % revoked, messages.SUCCESS)
        warn_already_revoked(self, request, count=len(keys) - revoked, noun="key")
        return None


# --- Audit log -----------------------------------------------------------------------


@admin.register(AuditEvent)
class AuditEventAdmin(NulSafeChangelistMixin, ReadOnlyAdminMixin, HostnameSearchMixin, admin.ModelAdmin):
    """Read-only for everyone: no add, change or delete, no delete action."""

    list_display = ("created_at", "kind", "actor_display", "subject_display", "client", "key_prefix", "ip_address")
    list_select_related = ("actor", "subject")
    hostname_search_field = "client_id"
    list_filter = (
        "kind",
        "actor_kind",
        client_filter("client_id"),
        username_filter("subject__username", title="subject user (username)"),
        "created_at",
    )
    search_fields = ("subject__username", "actor__username", "client_id", "key_prefix__startswith", "ip_address")
    search_help_text = "Username (subject or actor), the app's hostname, key prefix (kg_…) or IP address."
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "kind",
        "actor_display",
        "subject_display",
        "client",
        "key_prefix",
        "ip_address",
        "user_agent",
        "detail_display",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="actor", ordering="actor_kind")
    def actor_display(self, event: AuditEvent) -> str:
        label = event.get_actor_kind_display()
        if event.actor is None:
            return label
        return format_html("{}: {}", label, _user_change_link(event.actor))

    @admin.display(description="subject user", ordering="subject__username")
    def subject_display(self, event: AuditEvent) -> str:
        return _user_change_link(event.subject) or "—"

    @admin.display(description="client", ordering="client_id")
    def client(self, event: AuditEvent) -> str:
        return display_name(event.client_id) or "—"

    @admin.display(description="detail")
    def detail_display(self, event: AuditEvent) -> str:
        return format_html("<pre>{}</pre>", json.dumps(event.detail, indent=2, sort_keys=True, ensure_ascii=False))


# --- Outgoing mail -------------------------------------------------------------------


class NotificationStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("waiting", "Queued or retrying"), ("sent", "Sent"), ("failed", "Given up")]

    def queryset(self, request, queryset):
        match self.value():
            case "waiting":
                return queryset.filter(sent_at__isnull=True, failed_at__isnull=True)
            case "sent":
                return queryset.filter(sent_at__isnull=False)
            case "failed":
                return queryset.filter(failed_at__isnull=False)
        return None


@admin.register(Notification)
class NotificationAdmin(ReadOnlyAdminMixin, admin.ModelAdmin):
    """Notices to people (accounts.notifications), read-only: what was sent, what is retried, and why."""

    list_display = ("created_at", "kind", "user", "to_address", "status", "attempts", "sent_at", "last_error")
    list_select_related = ("user",)
    list_filter = (NotificationStatusFilter, "kind", username_filter("user__username"), "created_at")
    search_fields = ("user__username", "to_address", "subject")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "kind",
        "user",
        "to_address",
        "subject",
        "body",
        "status",
        "attempts",
        "next_attempt_at",
        "sent_at",
        "failed_at",
        "last_error",
    )
    readonly_fields = fields
    actions = None
