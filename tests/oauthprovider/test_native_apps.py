"""Apps on the person's computer that name themselves (DESIGN.md "Clients"), and the reference CLI's request.

Command-line tools written for the reference provider send a name of their
own as client_id with a loopback redirect on any port; the reference CLI
sends client_id=localhost, a resource naming its own loopback origin, and
no state. Each must work unchanged, and no name may pass for a website.
"""

import pytest
from django.test import Client

from accounts.models import ApiKey
from oauthprovider.models import Grant
from tests.conftest import (
    authorize_params,
    authorize_url,
    consent_request_id,
    exchange,
    form_post,
    query_of,
    token_request,
)

THIRD_PARTY_CLIS = [
    ("findall-cli", "http://localhost:8742/callback"),
    ("extract-from-sitemap-cli", "http://localhost:3737/callback"),
    ("parallel-web.opencode-plugin", "http://localhost:51234/callback"),
    ("My Tool 2.0 (beta)", "http://127.0.0.1:9999/cb"),
    ("outil-énorme", "http://[::1]:4000/"),
]


def sign_in_as_cli(client: Client, pkce, client_id: str, redirect_uri: str, **extra):
    return client.get(authorize_url(authorize_params(pkce, client_id=client_id, redirect_uri=redirect_uri, **extra)))


def allow(client: Client, page) -> str:
    response = client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 302, response.content[:300]
    return response["Location"]


@pytest.mark.parametrize("client_id, redirect_uri", THIRD_PARTY_CLIS)
def test_a_cli_naming_itself_signs_in_end_to_end(alice, alice_client, pkce_pair, client_id, redirect_uri):
    page = sign_in_as_cli(alice_client, pkce_pair, client_id, redirect_uri)
    assert page.status_code == 200, page.content[:400]
    location = allow(alice_client, page)
    assert location.startswith(redirect_uri + "?code=")
    response = exchange(
        Client(), query_of(location)["code"][0], pkce_pair, client_id=client_id, redirect_uri=redirect_uri
    )
    assert response.status_code == 200, response.content
    assert Client().get("/v1/me", HTTP_X_API_KEY=response.json()["access_token"]).status_code == 200
    assert Grant.objects.get(user=alice).client_id == f"unverified:{client_id}"
    assert ApiKey.objects.get(user=alice).name == client_id


def test_the_consent_page_says_plainly_the_name_is_unverified(alice_client, pkce_pair):
    text = sign_in_as_cli(alice_client, pkce_pair, "findall-cli", "http://localhost:8742/callback").content.decode()
    assert "An app on your computer that calls itself" in text
    assert 'data-testid="client-self-name">findall-cli<' in text
    assert 'data-testid="loopback-notice"' in text
    assert "cannot verify its name" in text


def test_a_local_app_calling_itself_like_a_website_is_not_shown_as_that_website(alice_client, pkce_pair):
    text = sign_in_as_cli(alice_client, pkce_pair, "github.com", "http://localhost:8742/callback").content.decode()
    assert 'class="client-host"' not in text, "a website's styling for a name nobody verified"
    assert 'data-testid="client-self-name">github.com<' in text
    assert "client-punycode" not in text


def test_a_local_app_and_the_website_of_the_same_name_keep_separate_grants(alice, alice_client, pkce_pair):
    allow(alice_client, sign_in_as_cli(alice_client, pkce_pair, "yourapp.com", "https://yourapp.com/callback"))
    allow(alice_client, sign_in_as_cli(alice_client, pkce_pair, "yourapp.com", "http://localhost:8742/callback"))
    assert set(Grant.objects.filter(user=alice).values_list("client_id", flat=True)) == {
        "yourapp.com",
        "unverified:yourapp.com",
    }
    apps = alice_client.get("/apps/").content.decode()
    assert "name not verified" in apps


def test_the_connected_apps_page_names_a_cli_as_an_unverified_name(alice_client, pkce_pair):
    allow(alice_client, sign_in_as_cli(alice_client, pkce_pair, "findall-cli", "http://localhost:8742/callback"))
    apps = alice_client.get("/apps/").content.decode()
    assert "findall-cli" in apps and "name not verified" in apps
    assert "unverified:" not in apps


@pytest.mark.parametrize(
    "client_id",
    ["", " findall", "findall ", "a\u202eb", "a\u2066b", "tab\tname", "new\nline", "x" * 101, "nul\x00"],
)
def test_a_name_that_is_not_short_and_printable_is_refused(alice_client, pkce_pair, client_id):
    response = sign_in_as_cli(alice_client, pkce_pair, client_id, "http://localhost:8742/callback")
    assert response.status_code == 400
    assert "Location" not in response


@pytest.mark.parametrize("redirect_uri", ["https://evil.com/cb", "http://findall-cli/callback", "http://10.0.0.1/cb"])
def test_a_name_that_is_no_hostname_must_come_back_to_a_loopback_address(alice_client, pkce_pair, redirect_uri):
    response = sign_in_as_cli(alice_client, pkce_pair, "findall-cli", redirect_uri)
    assert response.status_code == 400
    assert "Location" not in response


def test_the_loopback_switch_covers_apps_that_name_themselves(alice_client, pkce_pair, settings):
    settings.OAUTH_ALLOW_LOOPBACK_CLIENTS = False
    response = sign_in_as_cli(alice_client, pkce_pair, "findall-cli", "http://localhost:8742/callback")
    assert response.status_code == 400
    assert b"turned off" in response.content


def test_another_name_cannot_redeem_the_code(alice_client, pkce_pair):
    uri = "http://localhost:8742/callback"
    location = allow(alice_client, sign_in_as_cli(alice_client, pkce_pair, "findall-cli", uri))
    code = query_of(location)["code"][0]
    wrong = exchange(Client(), code, pkce_pair, client_id="other-cli", redirect_uri=uri)
    assert wrong.json()["error"] == "invalid_grant"
    assert exchange(Client(), code, pkce_pair, client_id="findall-cli", redirect_uri=uri).status_code == 200


def test_a_cli_can_give_its_key_back(alice_client, pkce_pair):
    uri = "http://localhost:8742/callback"
    location = allow(alice_client, sign_in_as_cli(alice_client, pkce_pair, "findall-cli", uri))
    key = exchange(
        Client(), query_of(location)["code"][0], pkce_pair, client_id="findall-cli", redirect_uri=uri
    ).json()["access_token"]
    response = form_post(Client(), "/getKeys/revoke", token=key, client_id="findall-cli")
    assert response.status_code == 200
    assert not Grant.objects.get().is_active
    assert Client().get("/v1/me", HTTP_X_API_KEY=key).status_code == 401


# --- The reference CLI's own request ---------------------------------------------------------


def test_the_reference_cli_request_works_unchanged(alice, alice_client, pkce_pair):
    """client_id=localhost, redirect to a random port, resource = its own origin, no state."""
    port = 53682
    redirect_uri = f"http://localhost:{port}/callback"
    resource = f"http://localhost:{port}"
    params = authorize_params(pkce_pair, client_id="localhost", redirect_uri=redirect_uri, resource=resource)
    del params["state"]
    page = alice_client.get(authorize_url(params))
    assert page.status_code == 200, page.content[:400]
    location = allow(alice_client, page)
    query = query_of(location)
    assert "state" not in query
    assert query["iss"] == ["http://127.0.0.1:8000"]
    response = token_request(
        Client(),
        grant_type="authorization_code",
        code=query["code"][0],
        client_id="localhost",
        redirect_uri=redirect_uri,
        code_verifier=pkce_pair.verifier,
        resource=resource,
    )
    assert response.status_code == 200, response.content
    assert Grant.objects.get(user=alice).resources == [], "its own origin is no audience"
