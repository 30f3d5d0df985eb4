"""RFC 7009 revocation by the app, RFC 7662 introspection by resource servers."""

import base64
from urllib.parse import urlencode

import pytest
from django.core.management import call_command
from django.test import Client

from accounts.models import ApiKey, AuditEvent
from oauthprovider.introspection import resource_server_create
from oauthprovider.models import Grant
from tests.conftest import CLIENT_ID, exchange, issue_code, new_pkce_pair


def key_for(client: Client, pkce, **overrides) -> str:
    code = issue_code(client, pkce, **overrides)
    response = exchange(
        Client(), code, pkce, **{k: v for k, v in overrides.items() if k in ("client_id", "redirect_uri")}
    )
    assert response.status_code == 200, response.content
    return response.json()["access_token"]


def revoke(**data):
    return Client().post("/getKeys/revoke", urlencode(data), content_type="application/x-www-form-urlencoded")


def me(key: str) -> int:
    return Client().get("/v1/me", HTTP_X_API_KEY=key).status_code


# --- Revocation -------------------------------------------------------------------


def test_an_app_gives_back_the_key_its_consent_created(alice_client, pkce_pair):
    key = key_for(alice_client, pkce_pair)
    response = revoke(token=key, client_id=CLIENT_ID)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    assert response["Access-Control-Allow-Origin"] == "*"
    assert me(key) == 401
    grant = Grant.objects.get(client_id=CLIENT_ID)
    assert grant.revoked_by == Grant.RevokedBy.CLIENT
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.GRANT_REVOKED, actor_kind="client").exists()


def test_giving_back_a_chosen_existing_key_ends_the_grant_but_keeps_the_key(alice_client, alice_key, pkce_pair):
    existing, raw = alice_key
    key = key_for(alice_client, pkce_pair, key=str(existing.pk))
    assert key == raw
    assert revoke(token=key, client_id=CLIENT_ID).status_code == 200
    assert not Grant.objects.get(client_id=CLIENT_ID).is_active
    assert me(raw) == 200  # the user's own key keeps working elsewhere


def test_revocation_never_touches_another_apps_grant(alice_client, pkce_pair):
    key = key_for(alice_client, pkce_pair)
    assert revoke(token=key, client_id="other-app.com").status_code == 200
    assert me(key) == 200
    assert Grant.objects.get(client_id=CLIENT_ID).is_active


def test_an_app_cannot_end_another_apps_grant_on_a_key_both_were_given(alice_client, alice_key, pkce_pair):
    """Issue #13 item 9: with a key both hold, one app could end the other's grant and its keys."""
    existing, raw = alice_key
    other = {"client_id": "otherapp.com", "redirect_uri": "https://otherapp.com/cb"}
    others_own_key = key_for(alice_client, new_pkce_pair(), **other)  # an earlier consent made otherapp a key
    key_for(alice_client, pkce_pair, key=str(existing.pk))  # alice gives her key to yourapp.com...
    key_for(alice_client, new_pkce_pair(), key=str(existing.pk), **other)  # ...and to otherapp.com

    # Whoever presents the key could be either app: it speaks for neither.
    assert revoke(token=raw, client_id="otherapp.com").status_code == 200
    assert Grant.objects.get(client_id="otherapp.com").is_active
    assert me(others_own_key) == 200
    assert not AuditEvent.objects.filter(kind=AuditEvent.Kind.GRANT_REVOKED).exists()


def test_a_key_only_one_app_was_given_still_ends_that_apps_grant(alice_client, alice_key, pkce_pair):
    existing, raw = alice_key
    key_for(alice_client, pkce_pair, key=str(existing.pk))
    key_for(alice_client, new_pkce_pair(), client_id="otherapp.com", redirect_uri="https://otherapp.com/cb")
    assert revoke(token=raw, client_id=CLIENT_ID).status_code == 200
    assert not Grant.objects.get(client_id=CLIENT_ID).is_active
    assert Grant.objects.get(client_id="otherapp.com").is_active


@pytest.mark.parametrize("token", ["kg_unknown", "x" * 200, "", "kg_" + "A" * 60])
def test_unknown_tokens_get_200_and_change_nothing(alice_client, pkce_pair, token):
    key = key_for(alice_client, pkce_pair)
    response = revoke(token=token, client_id=CLIENT_ID) if token else revoke(client_id=CLIENT_ID)
    assert response.status_code == (200 if token else 400)
    assert me(key) == 200


def test_without_a_client_id_a_key_created_for_an_app_names_that_app(alice_client, pkce_pair):
    key = key_for(alice_client, pkce_pair)
    assert revoke(token=key).status_code == 200
    assert me(key) == 401
    assert not Grant.objects.get(client_id=CLIENT_ID).is_active


def test_without_a_client_id_a_chosen_existing_key_is_left_alone(alice_client, alice_key, pkce_pair):
    existing, raw = alice_key
    key_for(alice_client, pkce_pair, key=str(existing.pk))
    assert revoke(token=raw).status_code == 200
    assert me(raw) == 200
    assert Grant.objects.get(client_id=CLIENT_ID).is_active


def test_revocation_answers_malformed_requests_with_json_errors(db):
    response = Client().post("/getKeys/revoke", '{"token": "x"}', content_type="application/json")
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_request"
    assert Client().get("/getKeys/revoke").status_code == 405
    response = revoke(token="a\x00b", client_id="bad host!")
    assert response.status_code == 400


# --- Introspection -------------------------------------------------------------------

MCP = "https://mcp.example.com/mcp"
OTHER_MCP = "https://other-mcp.example.com/mcp"


@pytest.fixture(autouse=True)
def _resources(settings):
    settings.OAUTH_RESOURCES = [settings.OAUTH_ISSUER, MCP, OTHER_MCP]


@pytest.fixture
def resource_server(db):
    _, client_id, secret = resource_server_create(name="docs MCP server", resources=[MCP])
    return client_id, secret


def introspect(token: str, credentials: tuple[str, str] | None, *, post_credentials=False):
    data = {"token": token}
    headers = {}
    if credentials and post_credentials:
        data.update(client_id=credentials[0], client_secret=credentials[1])
    elif credentials:
        headers["HTTP_AUTHORIZATION"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    return Client().post(
        "/getKeys/introspect", urlencode(data), content_type="application/x-www-form-urlencoded", **headers
    )


@pytest.mark.parametrize("post_credentials", [False, True])
def test_a_resource_server_learns_who_a_key_belongs_to_but_never_the_key(
    alice_client, pkce_pair, resource_server, post_credentials
):
    key = key_for(alice_client, pkce_pair, resource=MCP)
    response = introspect(key, resource_server, post_credentials=post_credentials)
    assert response.status_code == 200
    body = response.json()
    assert body["active"] is True
    assert body["scope"] == "key:read"
    assert body["client_id"] == CLIENT_ID
    assert body["username"] == "alice"
    assert body["sub"] == str(ApiKey.objects.get().user_id)
    assert body["aud"] == [MCP]
    assert key not in response.content.decode()
    assert response["Cache-Control"] == "no-store"


def test_a_key_never_handed_to_the_asking_server_is_inactive_to_it(alice_client, alice_key, pkce_pair, resource_server):
    """Issue #13 item 11: introspection used to answer any resource server about any key."""
    _, own = alice_key
    assert introspect(own, resource_server).json() == {"active": False}  # a key the user made
    no_resource = key_for(alice_client, pkce_pair)  # handed to an app without a resource
    assert introspect(no_resource, resource_server).json() == {"active": False}
    elsewhere = key_for(
        alice_client, pkce_pair, resource=OTHER_MCP, client_id="other.example", redirect_uri="https://other.example/cb"
    )
    assert introspect(elsewhere, resource_server).json() == {"active": False}  # another server's key
    assert me(elsewhere) == 200  # all three are active keys all the same


def test_a_server_learns_only_its_own_resources_as_audience(alice_client, pkce_pair, resource_server):
    key = key_for(alice_client, pkce_pair, resource=[MCP, OTHER_MCP])
    assert introspect(key, resource_server).json()["aud"] == [MCP]


def test_a_key_an_earlier_consent_created_for_the_app_is_still_the_apps(alice_client, pkce_pair, resource_server):
    first = key_for(alice_client, pkce_pair, resource=MCP)
    second = key_for(alice_client, pkce_pair, resource=MCP)  # the app on another machine: a second key
    assert introspect(first, resource_server).json()["active"] is True
    assert introspect(second, resource_server).json()["active"] is True


def test_a_url_below_a_served_resource_is_served(alice_client, pkce_pair, resource_server):
    key = key_for(alice_client, pkce_pair, resource=MCP + "/tools")
    assert introspect(key, resource_server).json()["aud"] == [MCP + "/tools"]


def test_a_revoked_or_unknown_key_is_inactive(alice_client, pkce_pair, resource_server):
    key = key_for(alice_client, pkce_pair, resource=MCP)
    revoke(token=key, client_id=CLIENT_ID)
    assert introspect(key, resource_server).json() == {"active": False}
    assert introspect("kg_nothing", resource_server).json() == {"active": False}


def test_a_revoked_grant_tells_the_server_nothing_more(alice_client, alice_key, pkce_pair, resource_server):
    existing, raw = alice_key
    key_for(alice_client, pkce_pair, key=str(existing.pk), resource=MCP)
    assert introspect(raw, resource_server).json()["active"] is True
    Grant.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert introspect(raw, resource_server).json() == {"active": False}
    assert me(raw) == 200  # the user's own key still works on the API


@pytest.mark.parametrize("credentials", [None, ("rs_unknown", "secret"), ("", ""), ("rs_x", "y" * 300)])
def test_introspection_refuses_unauthenticated_callers(alice_client, pkce_pair, credentials):
    key = key_for(alice_client, pkce_pair)
    response = introspect(key, credentials)
    assert response.status_code == 401
    assert response.json()["error"] == "invalid_client"
    assert response["WWW-Authenticate"].startswith("Basic ")


def test_introspection_refuses_a_wrong_secret_and_revoked_credentials(alice_client, pkce_pair, resource_server):
    from oauthprovider.models import ResourceServer

    key = key_for(alice_client, pkce_pair, resource=MCP)
    assert introspect(key, (resource_server[0], "wrong")).status_code == 401
    ResourceServer.objects.update(revoked_at="2026-01-01T00:00:00Z")
    assert introspect(key, resource_server).status_code == 401


def test_introspection_is_not_open_to_browsers(resource_server):
    response = introspect("x", resource_server)
    assert "Access-Control-Allow-Origin" not in response


def test_a_garbled_basic_header_is_refused_cleanly(db):
    response = Client().post(
        "/getKeys/introspect",
        "token=x",
        content_type="application/x-www-form-urlencoded",
        HTTP_AUTHORIZATION="Basic %%%not-base64",
    )
    assert response.status_code == 401


def test_the_management_command_prints_credentials_once(db, capsys):
    from oauthprovider.models import ResourceServer

    call_command("create_resource_server", "example", "--resource", MCP)
    out = capsys.readouterr().out
    assert "client_id: rs_" in out and "secret:" in out
    server = ResourceServer.objects.get()
    secret = out.split("secret:")[1].split()[0]
    assert secret not in server.secret_hash
    assert server.resources == [MCP]


@pytest.mark.parametrize(
    "arguments",
    [[], ["--resource", "https://not-configured.example/mcp"], ["--resource", "not a url"]],
)
def test_the_management_command_needs_configured_resources(db, arguments):
    from django.core.management.base import CommandError

    from oauthprovider.models import ResourceServer

    with pytest.raises((CommandError, SystemExit)):
        call_command("create_resource_server", "example", *arguments)
    assert not ResourceServer.objects.exists()
