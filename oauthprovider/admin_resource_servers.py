"""Admin for resource servers: operators issue and revoke introspection credentials."""

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.utils import timezone

from oauthprovider.models import ResourceServer
from oauthprovider.services import resource_server_create


@admin.register(ResourceServer)
class ResourceServerAdmin(admin.ModelAdmin):
    list_display = ["name", "client_id", "created_at", "last_used_at", "revoked_at"]
    list_filter = [("revoked_at", admin.EmptyFieldListFilter)]
    search_fields = ["name", "client_id"]
    fields = ["name", "client_id", "created_at", "last_used_at", "revoked_at"]
    readonly_fields = ["client_id", "created_at", "last_used_at"]
    actions = ["revoke_credentials"]

    def has_delete_permission(self, request: HttpRequest, obj=None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: ResourceServer, form, change: bool) -> None:
        if change:
            super().save_model(request, obj, form, change)
            return
        server, client_id, secret = resource_server_create(name=obj.name)
        obj.pk, obj.client_id, obj.secret_hash, obj.created_at = server.pk, client_id, server.secret_hash, server.created_at
        obj._state.adding = False
        request._issued_credentials = (client_id, secret)

    def response_add(self, request: HttpRequest, obj: ResourceServer, post_url_continue=None) -> HttpResponse:
        """Show the secret once, in this response only (never in a message cookie or a log)."""
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

    @admin.action(description="Revoke the selected credentials")
    def revoke_credentials(self, request: HttpRequest, queryset) -> None:
        count = queryset.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
        self.message_user(request, f"Revoked {count} resource server credential(s).")
