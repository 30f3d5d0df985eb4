"""Operators issue and revoke introspection credentials in admin."""

import base64
import re

import pytest
from django.test import Client
from django.urls import reverse

from accounts.models import AuditEvent
from oauthprovider.models import ResourceServer

MCP = "https://mcp.example.com/mcp"
ADD = {"name": "docs MCP", "resources": MCP}


@pytest.fixture(autouse=True)
def _resources(settings):
    settings.OAUTH_RESOURCES = [settings.OAUTH_ISSUER, MCP, "https://other.example.com/mcp"]


def introspect_status(client_id: str, secret: str) -> int:
    auth = "Basic " + base64.b64encode(f"{client_id}:{secret}".encode()).decode()
    return (
        Client()
        .post(
            "/getKeys/introspect", "token=x", content_type="application/x-www-form-urlencoded", HTTP_AUTHORIZATION=auth
        )
        .status_code
    )


def test_adding_a_resource_server_shows_its_secret_once(operator_client, operator):
    response = operator_client.post(reverse("admin:oauthprovider_resourceserver_add"), ADD)
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    client_id = re.search(r"<code>(rs_[^<]+)</code>", html).group(1)
    secret = re.search(r"secret</th><td><code>([^<]+)</code>", html).group(1)
    assert introspect_status(client_id, secret) == 200

    server = ResourceServer.objects.get()
    assert secret not in server.secret_hash
    assert server.resources == [MCP]
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RESOURCE_SERVER_CREATED)
    assert event.actor == operator and secret not in str(event.detail)
    # Never again: not on the list, not on the object's page.
    for url in (
        reverse("admin:oauthprovider_resourceserver_changelist"),
        reverse("admin:oauthprovider_resourceserver_change", args=[server.pk]),
    ):
        assert secret not in operator_client.get(url).content.decode()


def test_revoking_credentials_asks_first_then_records_it(operator_client):
    operator_client.post(reverse("admin:oauthprovider_resourceserver_add"), ADD)
    server = ResourceServer.objects.get()
    url = reverse("admin:oauthprovider_resourceserver_changelist")
    form = {"action": "revoke_credentials", "_selected_action": [server.pk]}
    confirm = operator_client.post(url, form)
    assert confirm.status_code == 200 and b"Revoke introspection credentials" in confirm.content
    server.refresh_from_db()
    assert server.is_active

    operator_client.post(url, {**form, "post": "yes"})
    server.refresh_from_db()
    assert not server.is_active
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.RESOURCE_SERVER_REVOKED).count() == 1


def test_credentials_cannot_be_deleted_and_only_their_resources_changed(operator_client, operator):
    operator_client.post(reverse("admin:oauthprovider_resourceserver_add"), ADD)
    server = ResourceServer.objects.get()
    assert (
        operator_client.post(
            reverse("admin:oauthprovider_resourceserver_delete", args=[server.pk]), {"post": "yes"}
        ).status_code
        == 403
    )
    operator_client.post(reverse("admin:oauthprovider_resourceserver_change", args=[server.pk]), {"name": "renamed"})
    server.refresh_from_db()
    assert server.name == "docs MCP"
    server.refresh_from_db()
    assert server.resources == [MCP]  # the post above named no resources: refused

    change = reverse("admin:oauthprovider_resourceserver_change", args=[server.pk])
    both = f"{MCP}\nhttps://other.example.com/mcp"
    assert operator_client.post(change, {"resources": both, "name": "renamed"}).status_code == 302
    server.refresh_from_db()
    assert server.resources == [MCP, "https://other.example.com/mcp"] and server.name == "docs MCP"
    event = AuditEvent.objects.get(kind=AuditEvent.Kind.RESOURCE_SERVER_CHANGED)
    assert event.actor == operator and event.detail["before"] == [MCP]


@pytest.mark.parametrize("resources", ["", "https://not-configured.example/mcp", "not a url"])
def test_a_resource_server_must_serve_configured_resources(operator_client, resources):
    response = operator_client.post(reverse("admin:oauthprovider_resourceserver_add"), {**ADD, "resources": resources})
    assert response.status_code == 200
    assert "errorlist" in response.content.decode()
    assert not ResourceServer.objects.exists()
