"""Admin for grants (audit and revoke) and authorization codes (read-only, no hashes).

Grants change only through the two revoke actions, which follow DESIGN.md
"Grants" by calling `grant_revoke`; codes are removed by `purge_codes`.
"""

from collections import defaultdict
from urllib.parse import urlencode

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import IntegrityError
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import reverse
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
from accounts.clients import SELF_NAMED_MARK, ClientName, display_name, is_document_url, self_named_record
from accounts.models import ApiKey
from oauthprovider import protocol
from oauthprovider.blocks import (
    block_impact,
    client_block,
    client_block_sweep,
    client_block_sweep_later,
    client_unblock,
)
from oauthprovider.introspection import (
    resource_server_create,
    resource_server_revoke,
    resource_server_set_resources,
    served_resources,
)
from oauthprovider.models import AuthorizationCode, ClientBlock, DeviceAuthorization, Grant, ResourceServer
from oauthprovider.services import grant_revoke

# --- Grants --------------------------------------------------------------------------


class GrantStatusFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request, model_admin):
        return [("active", "Active"), ("revoked", "Revoked")]

    def queryset(self, request, queryset):
        if self.value() in ("active", "revoked"):
            return queryset.filter(revoked_at__isnull=self.value() == "active")
        return None


def _key_note(grant: Grant, *, revoke_key: bool, consent_keys: list[ApiKey]) -> str:
    """What the revoke action will do to the keys this grant is about."""
    notes = []
    if grant.key is not None and not grant.key_created_by_consent:
        if not grant.key.is_active:
            notes.append(f"its key {grant.key.masked} (chosen by the user) is already revoked")
        elif revoke_key:
            notes.append(f"the user's own key {grant.key.masked} “{grant.key.name}” will be revoked too")
        else:
            notes.append(f"the user's own key {grant.key.masked} “{grant.key.name}” stays active")
    if consent_keys:
        masked = ", ".join(k.masked for k in consent_keys)
        notes.append(f"key(s) created by consent for this app will be revoked: {masked}")
    elif grant.key is not None and grant.key_created_by_consent and not grant.key.is_active:
        notes.append(f"its key {grant.key.masked} (created by the consent) is already revoked")
    if not grant.is_active:
        notes.insert(0, "grant already revoked")
    return "; ".join(notes) or "no key to revoke"


@admin.register(Grant)
class GrantAdmin(NulSafeChangelistMixin, ReadOnlyAdminMixin, HostnameSearchMixin, admin.ModelAdmin):
    list_display = ("user", "client", "key_prefix", "first_authorized_at", "last_authorized_at", "status")
    list_select_related = ("user", "key", "revoked_by_user")
    hostname_search_field = "client_id"
    list_filter = (
        GrantStatusFilter,
        "revoked_by",
        client_filter("client_id"),
        username_filter("user__username"),
        "last_authorized_at",
    )
    search_fields = ("user__username", "user__email", "client_id")
    search_help_text = "Username, email, or the app's hostname (Unicode or punycode)."
    date_hierarchy = "last_authorized_at"
    fields = (
        "user",
        "client",
        "scope",
        "key",
        "key_origin",
        "first_authorized_at",
        "last_authorized_at",
        "status",
        "related",
    )
    readonly_fields = fields
    actions = ["revoke_grants", "revoke_grants_and_keys"]

    def has_revoke_permission(self, request) -> bool:
        return request.user.has_perm("oauthprovider.change_grant")

    @admin.display(description="client", ordering="client_id")
    def client(self, grant: Grant) -> str:
        return display_name(grant.client_id)

    @admin.display(description="key", ordering="key__prefix")
    def key_prefix(self, grant: Grant) -> str:
        if grant.key is None:
            return "—"
        return grant.key.masked if grant.key.status == "active" else f"{grant.key.masked} ({grant.key.status})"

    @admin.display(description="key chosen")
    def key_origin(self, grant: Grant) -> str:
        if grant.key is None:
            return "—"
        if grant.key_created_by_consent:
            return "A new key, created by this consent (revoked with the grant)"
        return "One of the user's existing keys (revoked only on request: the user may use it elsewhere)"

    @admin.display(description="status", ordering="revoked_at")
    def status(self, grant: Grant) -> str:
        if grant.is_active:
            return "Active"
        by = grant.get_revoked_by_display() or "unknown"
        if grant.revoked_by_user is not None:
            by = f"{by} ({grant.revoked_by_user.username})"
        return f"Revoked {grant.revoked_at:%Y-%m-%d %H:%M} by {by}"

    @admin.display(description="related")
    def related(self, grant: Grant) -> str:
        links = [
            ("Codes", f"{reverse('admin:oauthprovider_authorizationcode_changelist')}?grant__id__exact={grant.pk}"),
            (
                "Audit events",
                f"{reverse('admin:accounts_auditevent_changelist')}?"
                + urlencode({"subject__id__exact": grant.user_id, "client": grant.client_id}),
            ),
            ("Block this app everywhere", block_url(grant.client_id)),
        ]
        return format_html_join(" · ", '<a href="{}">{}</a>', ((url, text) for text, url in links))

    @admin.action(
        description="Revoke grant",
        description_plural="Revoke selected grants",
        permissions=["revoke"],
        location=BOTH_LOCATIONS,
    )
    def revoke_grants(self, request, queryset):
        return self._revoke(request, queryset, action="revoke_grants", revoke_key=False)

    @admin.action(
        description="Revoke grant and its key",
        description_plural="Revoke selected grants and their keys",
        permissions=["revoke"],
        location=BOTH_LOCATIONS,
    )
    def revoke_grants_and_keys(self, request, queryset):
        return self._revoke(request, queryset, action="revoke_grants_and_keys", revoke_key=True)

    def _revoke(self, request, queryset, *, action: str, revoke_key: bool):
        grants = list(queryset.select_related("user", "key"))
        if not is_confirmed(request):
            return self._confirm(request, grants, action=action, revoke_key=revoke_key)
        context = RequestContext.from_request(request)
        revoked_grants = revoked_keys = 0
        for grant in grants:
            was_active = grant.is_active
            revoked_keys += len(
                grant_revoke(
                    grant=grant,
                    by=Grant.RevokedBy.ADMIN,
                    actor=request.user,
                    context=context,
                    revoke_key=revoke_key,
                )
            )
            revoked_grants += was_active and not grant.is_active
        grants_text = ngettext("%d grant", "%d grants", revoked_grants) % revoked_grants
        keys_text = ngettext("%d key", "%d keys", revoked_keys) % revoked_keys
        self.message_user(request, f"Revoked {grants_text} and {keys_text}.", messages.SUCCESS)
        warn_already_revoked(self, request, count=len(grants) - revoked_grants, noun="grant")
        return None

    def _confirm(self, request, grants: list[Grant], *, action: str, revoke_key: bool):
        consent_keys: dict[tuple[int, str], list[ApiKey]] = defaultdict(list)
        for key in ApiKey.objects.active().filter(
            user_id__in={g.user_id for g in grants}, created_for_client__in={g.client_id for g in grants}
        ):
            consent_keys[(key.user_id, key.created_for_client)].append(key)
        explanation = [
            "Revoking a grant revokes, at once, every key a consent created for that app: the app "
            "loses access with its next request.",
            "A key the user already had and chose on the consent page is different: the user may use "
            "it elsewhere (scripts, other apps), so “Revoke grant” leaves it active and only "
            "“Revoke grant and its key” revokes it. The app still holds that key, so choose the "
            "second action if the app must lose access now.",
        ]
        return confirmation_page(
            self,
            request,
            grants,
            action=action,
            title="Revoke grants and their keys" if revoke_key else "Revoke grants",
            intro=(
                ngettext(
                    "Revoke this grant%(keys)s?",
                    "Revoke these %(count)d grants%(keys)s?",
                    len(grants),
                )
                % {"count": len(grants), "keys": " and its key" if revoke_key else ""}
            ),
            rows=[
                ConfirmRow(
                    f"{grant.user.username} → {display_name(grant.client_id)}",
                    _key_note(
                        grant,
                        revoke_key=revoke_key,
                        consent_keys=consent_keys.get((grant.user_id, grant.client_id), []),
                    ),
                )
                for grant in grants
            ],
            explanation=explanation,
            submit_label="Yes, revoke",
        )


# --- Authorization codes ---------------------------------------------------------------


class CodeStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [("pending", "Pending"), ("expired", "Expired unused"), ("redeemed", "Redeemed")]

    def queryset(self, request, queryset):
        now = timezone.now()
        match self.value():
            case "pending":
                return queryset.filter(redeemed_at__isnull=True, expires_at__gt=now)
            case "expired":
                return queryset.filter(redeemed_at__isnull=True, expires_at__lte=now)
            case "redeemed":
                return queryset.filter(redeemed_at__isnull=False)
        return None


@admin.register(AuthorizationCode)
class AuthorizationCodeAdmin(NulSafeChangelistMixin, ReadOnlyAdminMixin, HostnameSearchMixin, admin.ModelAdmin):
    """Read-only; the code hash and the PKCE challenge are never shown."""

    list_display = ("client", "user", "state", "created_at", "expires_at", "redeemed_at", "failed_attempts")
    list_select_related = ("user", "grant")
    hostname_search_field = "grant__client_id"
    list_filter = (
        CodeStateFilter,
        client_filter("grant__client_id"),
        username_filter("user__username"),
        "created_at",
    )
    search_fields = ("user__username", "grant__client_id")
    search_help_text = "Username or the app's hostname."
    date_hierarchy = "created_at"
    fields = (
        "user",
        "grant",
        "client",
        "redirect_uri",
        "scope",
        "key_display",
        "state",
        "created_at",
        "expires_at",
        "redeemed_at",
        "failed_attempts",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="client", ordering="grant__client_id")
    def client(self, code: AuthorizationCode) -> str:
        return display_name(code.grant.client_id)

    @admin.display(description="key")
    def key_display(self, code: AuthorizationCode) -> str:
        return format_html(
            '<a href="{}">{}</a>', reverse("admin:accounts_apikey_change", args=[code.key_id]), code.key.masked
        )

    @admin.display(description="state")
    def state(self, code: AuthorizationCode) -> str:
        return code.state_label


# --- Resource servers ------------------------------------------------------------------


class ResourceServerForm(forms.ModelForm):
    resources = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text=(
            "The resource URLs (RFC 8707) this server serves, one per line, each OAUTH_ISSUER or one of "
            "OAUTH_EXTRA_RESOURCES (or a URL below one). Introspection tells the server only about keys "
            "whose grants name one of them."
        ),
    )

    class Meta:
        model = ResourceServer
        fields = ("name", "resources")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance.pk:
            self.initial["resources"] = "\n".join(self.instance.resources)

    def clean_resources(self) -> list[str]:
        try:
            return served_resources(self.cleaned_data["resources"].splitlines())
        except ValueError as exc:
            raise ValidationError(str(exc)) from None


@admin.register(ResourceServer)
class ResourceServerAdmin(NulSafeChangelistMixin, admin.ModelAdmin):
    """Introspection credentials for resource servers (MCP servers, separate APIs).

    Adding one issues a client_id and secret, shown once on the next page;
    only the secret's hash is kept. Credentials are revoked, never deleted;
    of an active server only the resources it serves can be changed (recorded
    in the audit log).
    """

    form = ResourceServerForm
    list_display = ("name", "client_id", "served", "created_at", "last_used_at", "status")
    list_filter = (("revoked_at", admin.EmptyFieldListFilter),)
    search_fields = ("name", "client_id")
    fields = ("name", "resources", "client_id", "created_at", "last_used_at", "revoked_at")
    readonly_fields = ("client_id", "created_at", "last_used_at", "revoked_at")
    actions = ["revoke_credentials"]

    def get_readonly_fields(self, request, obj=None):
        return ("name", *self.readonly_fields) if obj is not None else self.readonly_fields

    def has_change_permission(self, request, obj=None) -> bool:
        return (obj is None or obj.is_active) and super().has_change_permission(request, obj)

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    @admin.display(description="serves")
    def served(self, server: ResourceServer) -> str:
        return ", ".join(server.resources) or "nothing (every key is inactive to it)"

    @admin.display(description="status")
    def status(self, server: ResourceServer) -> str:
        return "Active" if server.is_active else f"Revoked {server.revoked_at:%Y-%m-%d %H:%M}"

    def save_model(self, request: HttpRequest, obj: ResourceServer, form, change: bool) -> None:
        context = RequestContext.from_request(request)
        if change:
            resource_server_set_resources(
                server=obj, resources=form.cleaned_data["resources"], context=context, actor=request.user
            )
            return
        server, client_id, secret = resource_server_create(
            name=obj.name, resources=form.cleaned_data["resources"], context=context, actor=request.user
        )
        obj.pk, obj.client_id, obj.secret_hash = server.pk, server.client_id, server.secret_hash
        obj.created_at, obj._state.adding = server.created_at, False
        request._issued_credentials = (client_id, secret)

    def response_add(self, request: HttpRequest, obj: ResourceServer, post_url_continue=None) -> HttpResponse:
        """The secret, once, in this response only (never in a message cookie or a log)."""
        client_id, secret = request._issued_credentials
        response = TemplateResponse(
            request,
            "admin/oauthprovider/resourceserver/issued.html",
            {
                **self.admin_site.each_context(request),
                "opts": self.opts,
                "server": obj,
                "client_id": client_id,
                "secret": secret,
                "title": "Resource server credentials",
            },
        )
        response["Cache-Control"] = "no-store"
        return response

    @admin.action(description="Revoke the selected credentials", permissions=["change"])
    def revoke_credentials(self, request: HttpRequest, queryset):
        servers = list(queryset)
        if not is_confirmed(request):
            return confirmation_page(
                self,
                request,
                servers,
                action="revoke_credentials",
                title="Revoke introspection credentials",
                intro=ngettext("Revoke these credentials?", "Revoke these %(count)d credentials?", len(servers))
                % {"count": len(servers)},
                rows=[
                    ConfirmRow(f"{s.name} ({s.client_id})", "" if s.is_active else "already revoked") for s in servers
                ],
                explanation=[
                    "The resource server's next introspection request gets 401: it can no longer "
                    "check keys, so its users are refused until it gets new credentials.",
                ],
                submit_label="Yes, revoke",
            )
        context = RequestContext.from_request(request)
        revoked = sum(resource_server_revoke(server=s, context=context, actor=request.user) for s in servers)
        self.message_user(
            request,
            ngettext("Revoked %d credential.", "Revoked %d credentials.", revoked) % revoked,
            messages.SUCCESS,
        )
        return None


# --- Device sign-ins ----------------------------------------------------------------------


class DeviceStateFilter(admin.SimpleListFilter):
    title = "state"
    parameter_name = "state"

    def lookups(self, request, model_admin):
        return [
            ("pending", "Pending"),
            ("approved", "Approved, key not yet picked up"),
            ("delivered", "Key delivered"),
            ("denied", "Denied"),
            ("expired", "Expired unanswered"),
        ]

    def queryset(self, request, queryset):
        now = timezone.now()
        undecided = queryset.filter(approved_at__isnull=True, denied_at__isnull=True)
        match self.value():
            case "pending":
                return undecided.filter(expires_at__gt=now)
            case "approved":
                return queryset.filter(approved_at__isnull=False, delivered_at__isnull=True)
            case "delivered":
                return queryset.filter(delivered_at__isnull=False)
            case "denied":
                return queryset.filter(denied_at__isnull=False)
            case "expired":
                return undecided.filter(expires_at__lte=now)
        return None


@admin.register(DeviceAuthorization)
class DeviceAuthorizationAdmin(NulSafeChangelistMixin, ReadOnlyAdminMixin, admin.ModelAdmin):
    """Read-only; the device code and user code are never stored, let alone shown."""

    list_display = ("client", "user", "state", "created_at", "expires_at", "approved_at", "delivered_at")
    list_select_related = ("user",)
    list_filter = (DeviceStateFilter, username_filter("user__username"), "created_at")
    search_fields = ("client_id", "user__username")
    search_help_text = "What the device calls itself, or a username."
    date_hierarchy = "created_at"
    fields = (
        "client",
        "user",
        "grant",
        "key",
        "scope",
        "state",
        "interval",
        "created_at",
        "expires_at",
        "approved_at",
        "denied_at",
        "delivered_at",
    )
    readonly_fields = fields
    actions = None

    @admin.display(description="device (its own name)", ordering="client_id")
    def client(self, authorization: DeviceAuthorization) -> str:
        return display_name(self_named_record(authorization.client_id))

    @admin.display(description="state")
    def state(self, authorization: DeviceAuthorization) -> str:
        return authorization.state_label


# --- Blocked clients (the kill switch) ----------------------------------------------------


def block_url(recorded: str) -> str:
    """The block form, filled in for the client grants record as `recorded`."""
    if recorded.startswith(SELF_NAMED_MARK):
        kind, pattern = ClientBlock.Kind.NAME, recorded.removeprefix(SELF_NAMED_MARK)
    elif is_document_url(recorded):
        kind, pattern = ClientBlock.Kind.DOCUMENT, recorded
    else:
        kind, pattern = ClientBlock.Kind.HOST, recorded
    return f"{reverse('admin:oauthprovider_clientblock_add')}?{urlencode({'kind': kind, 'pattern': pattern})}"


class ClientBlockForm(forms.Form):
    kind = forms.ChoiceField(label="Block", choices=ClientBlock.Kind.choices, widget=forms.RadioSelect)
    pattern = forms.CharField(
        label="Hostname, domain, document URL or name",
        max_length=protocol.MAX_METADATA_URL,
        help_text="A hostname or domain in Unicode or punycode (evil.example), or a metadata document URL "
        "(https://evil.example/client.json), or the name an app gives itself.",
    )
    reason = forms.CharField(
        max_length=500,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Shown to the people affected (in the mail they get) and on the page the app's requests get.",
    )
    revoke_chosen_keys = forms.BooleanField(
        label="Also revoke people's own keys that they chose for this app",
        required=False,
        initial=True,
        help_text="The app holds those keys: leave this on unless you know it never got them. "
        "Each person is told which of their keys were revoked.",
    )

    def clean(self):
        cleaned = super().clean()
        kind, raw = cleaned.get("kind"), cleaned.get("pattern")
        if kind and raw:
            try:
                cleaned["pattern"] = protocol.block_pattern(kind, raw)
            except ValueError as exc:
                self.add_error("pattern", str(exc))
                return cleaned
            if ClientBlock.objects.active().filter(kind=kind, pattern=cleaned["pattern"]).exists():
                self.add_error("pattern", "This client is already blocked.")
        return cleaned


@admin.register(ClientBlock)
class ClientBlockAdmin(admin.ModelAdmin):
    """Block a client everywhere: add (with a confirmation page), see the sweep, unblock.

    Blocks are never edited or deleted: a mistaken one is unblocked, and the
    record of both stays.
    """

    list_display = ("client", "kind", "reason", "created_by", "created_at", "status", "sweep")
    list_select_related = ("created_by", "unblocked_by")
    list_filter = (("unblocked_at", admin.EmptyFieldListFilter), "kind", "created_at")
    search_fields = ("pattern", "reason")
    fields = (
        "client",
        "kind",
        "pattern",
        "reason",
        "revoke_chosen_keys",
        "created_by",
        "created_at",
        "status",
        "sweep",
        "related",
    )
    readonly_fields = fields
    actions = ["unblock"]

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False

    def has_unblock_permission(self, request) -> bool:
        return request.user.has_perm("oauthprovider.change_clientblock")

    @admin.display(description="client", ordering="pattern")
    def client(self, block: ClientBlock) -> str:
        if block.kind == ClientBlock.Kind.DOMAIN:
            return f"{display_name(block.pattern)} and all its subdomains"
        return display_name(block.pattern)

    @admin.display(description="status", ordering="unblocked_at")
    def status(self, block: ClientBlock) -> str:
        if block.is_active:
            return "Blocked"
        by = f" by {block.unblocked_by.username}" if block.unblocked_by else ""
        return f"Unblocked {block.unblocked_at:%Y-%m-%d %H:%M}{by}"

    @admin.display(description="revoked")
    def sweep(self, block: ClientBlock) -> str:
        done = f"done {block.swept_at:%Y-%m-%d %H:%M}" if block.swept_at else "in progress"
        return f"{block.grants_revoked} grants, {block.keys_revoked} keys ({done})"

    @admin.display(description="related")
    def related(self, block: ClientBlock) -> str:
        events = f"{reverse('admin:accounts_auditevent_changelist')}?" + urlencode({"q": block.pattern})
        return format_html('<a href="{}">Audit events</a>', events)

    def add_view(self, request: HttpRequest, form_url: str = "", extra_context=None) -> HttpResponse:
        """The form, then a confirmation page that says what will be revoked, then the block."""
        if not self.has_add_permission(request):
            raise PermissionDenied
        initial = {k: request.GET[k] for k in ("kind", "pattern") if k in request.GET}
        form = ClientBlockForm(request.POST if request.method == "POST" else None, initial=initial)
        context = {**self.admin_site.each_context(request), "opts": self.opts, "form": form}
        if request.method != "POST" or not form.is_valid():
            return TemplateResponse(
                request, "admin/oauthprovider/clientblock/add.html", {**context, "title": "Block an app"}
            )
        data = form.cleaned_data
        if not is_confirmed(request):
            impact = block_impact(kind=data["kind"], pattern=data["pattern"])
            return TemplateResponse(
                request,
                "admin/oauthprovider/clientblock/confirm.html",
                {
                    **context,
                    "title": "Block this app?",
                    "impact": impact,
                    "data": data,
                    "client_display": ClientName.of(data["pattern"]).one_line,
                    "kind_label": ClientBlock.Kind(data["kind"]).label,
                    "batch_size": settings.MAINTENANCE_BATCH_SIZE,
                },
            )
        return self._block(request, data)

    def _block(self, request: HttpRequest, data: dict) -> HttpResponse:
        audit_context = RequestContext.from_request(request)
        try:
            block = client_block(
                kind=data["kind"],
                pattern=data["pattern"],
                reason=data["reason"],
                revoke_chosen_keys=data["revoke_chosen_keys"],
                actor=request.user,
                context=audit_context,
            )
        except IntegrityError:  # blocked meanwhile by someone else
            self.message_user(request, "This client was blocked meanwhile.", messages.WARNING)
            return HttpResponseRedirect(reverse("admin:oauthprovider_clientblock_changelist"))
        # The first batch now; the rest in the background (and `sweep_client_blocks` from cron).
        done = client_block_sweep(block=block, context=audit_context, max_batches=1)
        if not done:
            client_block_sweep_later(block)
        block.refresh_from_db()
        text = f"Blocked {ClientName.of(block.pattern).one_line}: revoked {block.grants_revoked} grants and "
        text += f"{block.keys_revoked} keys" + ("." if done else " so far; the rest follows in the background.")
        self.message_user(request, text, messages.SUCCESS)
        return HttpResponseRedirect(reverse("admin:oauthprovider_clientblock_change", args=[block.pk]))

    @admin.action(description="Unblock (revives nothing)", permissions=["unblock"])
    def unblock(self, request: HttpRequest, queryset):
        blocks = list(queryset)
        if not is_confirmed(request):
            return confirmation_page(
                self,
                request,
                blocks,
                action="unblock",
                title="Unblock apps",
                intro=ngettext("Unblock this app?", "Unblock these %(count)d apps?", len(blocks))
                % {"count": len(blocks)},
                rows=[ConfirmRow(self.client(b), "" if b.is_active else "already unblocked") for b in blocks],
                explanation=[
                    "People can allow the app again from now on. Nothing revoked comes back: its grants and "
                    "keys stay revoked, and it must ask each person again.",
                    "A sweep still running stops at its next batch.",
                ],
                submit_label="Yes, unblock",
            )
        audit_context = RequestContext.from_request(request)
        lifted = sum(client_unblock(block=b, actor=request.user, context=audit_context) for b in blocks)
        self.message_user(request, ngettext("Unblocked %d app.", "Unblocked %d apps.", lifted) % lifted)
        return None
