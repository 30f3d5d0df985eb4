"""GET/POST /getKeys/authorize through HTTP: validation order, error pages, redirect-URI
tricks, the login round trip, the consent page and the user's decision."""

import html
import re
from urllib.parse import parse_qs, urlencode

import pytest
from django.conf import settings
from django.contrib.auth import REDIRECT_FIELD_NAME
from django.shortcuts import resolve_url
from django.test import Client

from accounts.audit import SYSTEM
from accounts.models import ApiKey, AuditEvent
from accounts.services import key_create, key_revoke
from oauthprovider.models import AuthorizationCode, Grant, PendingConsent
from tests.conftest import (
    REDIRECT_URI,
    approve,
    authorize_params,
    authorize_url,
    consent_request_id,
    csrf_token_of,
    exchange,
    query_of,
)

ISSUER = "http://127.0.0.1:8000"


# --- Helpers ----------------------------------------------------------------------------


def get_authorize(client: Client, pkce, **overrides):
    return client.get(authorize_url(authorize_params(pkce, **overrides)))


def hrefs(response) -> list[str]:
    return [html.unescape(h) for h in re.findall(r'href="([^"]*)"', response.content.decode())]


def back_link(response) -> str | None:
    """The error page's link back to the app, if it offers one."""
    links = [h for h in hrefs(response) if h.startswith(("https://", "http://"))]
    assert len(links) <= 1, links
    return links[0] if links else None


def assert_refused_without_redirect(response, *, client_host: str = "yourapp.com") -> None:
    """A bad client_id or redirect_uri: our own 400 page, nothing sent anywhere."""
    assert response.status_code == 400
    assert "Location" not in response
    assert back_link(response) is None
    assert not any(client_host in h or "evil" in h for h in hrefs(response))
    assert b'data-testid="oauth-error"' in response.content


def assert_error_page_with_back_link(response, error: str, *, state: str | None = "random-state-value") -> dict:
    assert response.status_code == 400
    assert "Location" not in response  # never an automatic redirect
    assert f'data-testid="oauth-error">{error}<'.encode() in response.content
    link = back_link(response)
    assert link is not None, "the page links back to the app"
    assert link.startswith(REDIRECT_URI + "?")
    query = query_of(link)
    assert query["error"] == [error]
    assert query["error_description"][0]
    assert query["iss"] == [ISSUER]
    if state is None:
        assert "state" not in query
    else:
        assert query["state"] == [state]
    return query


def nothing_written() -> bool:
    return (
        not Grant.objects.exists()
        and not AuthorizationCode.objects.exists()
        and not AuditEvent.objects.filter(
            kind__in=[AuditEvent.Kind.CONSENT_GRANTED, AuditEvent.Kind.CODE_ISSUED]
        ).exists()
    )


def radio(response, value: str) -> str:
    match = re.search(rf'<input type="radio" name="key" value="{re.escape(value)}"[^>]*>', response.content.decode())
    assert match, f"no key choice {value!r}"
    return match.group(0)


def key_choices(response) -> list[str]:
    return re.findall(r'<input type="radio" name="key" value="([^"]+)"', response.content.decode())


def post_decision(client: Client, page, *, decision: str = "allow", key: str = "new"):
    return client.post("/getKeys/authorize", {"request": consent_request_id(page), "decision": decision, "key": key})


# --- client_id and redirect_uri: an error page, never a redirect -------------------------


def test_it_refuses_a_missing_client_id_without_redirecting(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, client_id=None)
    assert_refused_without_redirect(response)
    assert b"client_id" in response.content


def test_it_refuses_a_repeated_client_id_without_redirecting(alice_client, pkce_pair):
    params = authorize_params(pkce_pair)
    query = urlencode(params) + "&client_id=yourapp.com"
    assert_refused_without_redirect(alice_client.get("/getKeys/authorize?" + query))


def test_it_refuses_an_invalid_client_id_without_redirecting(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, client_id="not a host!")
    assert_refused_without_redirect(response)


def test_it_refuses_an_oversized_client_id_without_redirecting(alice_client, pkce_pair):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, client_id="a" * 300 + ".com"))


def test_it_refuses_a_missing_redirect_uri_without_redirecting(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, redirect_uri=None)
    assert_refused_without_redirect(response)
    assert b"redirect_uri" in response.content


def test_it_refuses_a_repeated_redirect_uri_without_redirecting(alice_client, pkce_pair):
    query = urlencode(authorize_params(pkce_pair)) + "&" + urlencode({"redirect_uri": REDIRECT_URI})
    assert_refused_without_redirect(alice_client.get("/getKeys/authorize?" + query))


def test_it_refuses_an_oversized_redirect_uri_without_redirecting(alice_client, pkce_pair):
    uri = "https://yourapp.com/" + "a" * 2100
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


def test_it_checks_the_client_id_first(alice_client, pkce_pair):
    response = get_authorize(
        alice_client,
        pkce_pair,
        client_id=None,
        redirect_uri="https://evil.com/",
        response_type="token",
        scope="admin",
        code_challenge=None,
    )
    assert_refused_without_redirect(response)
    assert b"client_id" in response.content


def test_it_checks_the_redirect_uri_before_everything_else(alice_client, pkce_pair):
    response = get_authorize(
        alice_client, pkce_pair, redirect_uri="https://evil.com/", response_type="token", scope="admin"
    )
    assert_refused_without_redirect(response)
    assert b"redirect_uri" in response.content
    assert b"unsupported_response_type" not in response.content


def test_it_never_sends_an_anonymous_user_with_a_bad_client_to_the_login_page(client, pkce_pair):
    response = get_authorize(client, pkce_pair, redirect_uri="https://evil.com/callback")
    assert_refused_without_redirect(response)


# --- Redirect-URI tricks ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    ["https://evil@yourapp.com/", "https://yourapp.com@evil.com/", "https://user:pw@yourapp.com/callback"],
)
def test_it_refuses_a_redirect_uri_with_userinfo(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize(
    "uri", ["https://yourapp.com\\@evil.com/", "https://evil.com\\yourapp.com/", "https://yourapp.com\\callback"]
)
def test_it_refuses_a_redirect_uri_with_a_backslash(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize(
    "uri", ["https:/evil.com/", "https:/yourapp.com/callback", "//yourapp.com/callback", "/callback"]
)
def test_it_refuses_a_redirect_uri_that_is_not_absolute(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize("uri", ["https://yourapp.com/callback#", "https://yourapp.com/callback#evil"])
def test_it_refuses_a_redirect_uri_with_a_fragment(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\x00", "\x01", "\x1b", "\x7f", " "])
def test_it_refuses_a_redirect_uri_with_control_characters_or_whitespace(alice_client, pkce_pair, char):
    for uri in (f"https://your{char}app.com/callback", f"https://yourapp.com/call{char}back"):
        assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize(
    "uri", ["https://yourapp.com/café", "https://yourаpp.com/callback", "https://yourapp.com/\u202e"]
)
def test_it_refuses_a_redirect_uri_with_raw_non_ascii(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize(
    "uri",
    [
        "https://yourapp.com/a/../callback",
        "https://yourapp.com/callback/..",
        "https://yourapp.com/a/%2e%2e/callback",
        "https://yourapp.com/a/%2E%2e/callback",
        "https://yourapp.com/./callback",
    ],
)
def test_it_refuses_a_redirect_uri_with_dot_segments(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


@pytest.mark.parametrize(
    "uri",
    [
        "https://yourapp.com.evil.com/callback",
        "https://evilyourapp.com/callback",
        "https://sub.yourapp.com/callback",
        "https://evil.com/callback",
        "https://evil.com/https://yourapp.com/callback",
        "https://yourapp%2ecom/callback",
    ],
)
def test_it_refuses_a_redirect_uri_on_a_look_alike_or_other_host(alice_client, pkce_pair, uri):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri=uri))


def test_it_refuses_plain_http_for_a_website(alice_client, pkce_pair):
    assert_refused_without_redirect(get_authorize(alice_client, pkce_pair, redirect_uri="http://yourapp.com/callback"))


def test_it_accepts_any_port_and_path_on_the_client_host(alice_client, pkce_pair):
    uri = "https://yourapp.com:8443/deep/path/cb"
    location = approve(alice_client, authorize_params(pkce_pair, redirect_uri=uri))
    assert location.startswith(uri + "?code=")


def test_it_compares_the_host_case_insensitively(alice_client, pkce_pair):
    uri = "https://YourApp.COM/callback"
    location = approve(alice_client, authorize_params(pkce_pair, client_id="yourapp.com", redirect_uri=uri))
    assert location.startswith(uri + "?")


# --- IDN and loopback clients -----------------------------------------------------------------


def test_a_unicode_client_id_works_with_its_punycode_redirect_host(alice_client, pkce_pair):
    params = authorize_params(
        pkce_pair, client_id="bücher.example", redirect_uri="https://xn--bcher-kva.example/callback"
    )
    page = alice_client.get(authorize_url(params))
    assert page.status_code == 200
    text = page.content.decode()
    assert "bücher.example" in text
    assert 'data-testid="client-punycode">xn--bcher-kva.example<' in text
    assert "Create a new key for bücher.example" in text

    location = post_decision(alice_client, page)["Location"]
    assert location.startswith("https://xn--bcher-kva.example/callback?")
    response = exchange(
        Client(),
        query_of(location)["code"][0],
        pkce_pair,
        client_id="bücher.example",
        redirect_uri="https://xn--bcher-kva.example/callback",
    )
    assert response.status_code == 200, response.content


def test_a_punycode_client_id_is_shown_in_unicode_and_punycode(alice_client, pkce_pair):
    # Cyrillic look-alike of "apple.com": people must see that it is not.
    page = get_authorize(
        alice_client, pkce_pair, client_id="xn--80ak6aa92e.com", redirect_uri="https://xn--80ak6aa92e.com/cb"
    )
    assert page.status_code == 200
    assert 'data-testid="client-punycode">xn--80ak6aa92e.com<' in page.content.decode()


def test_a_plain_hostname_is_not_shown_with_a_punycode_line(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    assert b"client-punycode" not in page.content


@pytest.mark.parametrize(
    "client_id, uri",
    [
        ("localhost", "http://localhost:53682/callback"),
        ("localhost", "http://localhost/callback"),
        ("127.0.0.1", "http://127.0.0.1:8765/"),
        ("[::1]", "http://[::1]:9000/cb"),
    ],
)
def test_a_loopback_app_may_use_http_on_any_port_and_is_marked(alice_client, pkce_pair, client_id, uri):
    page = get_authorize(alice_client, pkce_pair, client_id=client_id, redirect_uri=uri)
    assert page.status_code == 200, page.content[:400]
    assert b'data-testid="loopback-notice"' in page.content
    assert b"an app running on your own computer" in page.content
    location = post_decision(alice_client, page)["Location"]
    assert location.startswith(uri + "?code=")


def test_a_website_is_not_marked_as_a_loopback_app(alice_client, pkce_pair):
    assert b"an app running on your own computer" not in get_authorize(alice_client, pkce_pair).content


@pytest.mark.parametrize(
    "client_id, uri", [("localhost", "http://localhost:53682/callback"), ("127.0.0.1", "http://127.0.0.1:8765/")]
)
def test_loopback_apps_can_be_turned_off(alice_client, pkce_pair, settings, client_id, uri):
    settings.OAUTH_ALLOW_LOOPBACK_CLIENTS = False
    response = get_authorize(alice_client, pkce_pair, client_id=client_id, redirect_uri=uri)
    assert_refused_without_redirect(response, client_host=client_id)


def test_a_loopback_app_may_come_back_to_another_loopback_address(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair, client_id="localhost", redirect_uri="http://127.0.0.1:80/")
    assert page.status_code == 200
    assert post_decision(alice_client, page)["Location"].startswith("http://127.0.0.1:80/?code=")


def test_a_loopback_app_may_not_come_back_to_a_website(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, client_id="localhost", redirect_uri="https://evil.com/cb")
    assert_refused_without_redirect(response, client_host="evil.com")


# --- Other errors: our own page, with a link back to the app -----------------------------------


def test_it_shows_a_missing_code_challenge_with_a_link_back(alice_client, pkce_pair):
    assert_error_page_with_back_link(get_authorize(alice_client, pkce_pair, code_challenge=None), "invalid_request")


def test_it_shows_the_plain_challenge_method_as_an_error(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, code_challenge_method="plain")
    assert_error_page_with_back_link(response, "invalid_request")


def test_it_shows_a_missing_challenge_method_as_an_error(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, code_challenge_method=None)
    assert_error_page_with_back_link(response, "invalid_request")


def test_it_shows_a_malformed_code_challenge_as_an_error(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, code_challenge="not-a-sha256")
    assert_error_page_with_back_link(response, "invalid_request")


def test_it_shows_a_missing_response_type_as_an_error(alice_client, pkce_pair):
    assert_error_page_with_back_link(get_authorize(alice_client, pkce_pair, response_type=None), "invalid_request")


@pytest.mark.parametrize("response_type", ["token", "id_token", "code token", "CODE"])
def test_it_shows_an_unsupported_response_type(alice_client, pkce_pair, response_type):
    response = get_authorize(alice_client, pkce_pair, response_type=response_type)
    assert_error_page_with_back_link(response, "unsupported_response_type")


@pytest.mark.parametrize("scope", ["admin", "key:read key:write", "openid"])
def test_it_shows_an_unknown_scope_as_invalid_scope(alice_client, pkce_pair, scope):
    assert_error_page_with_back_link(get_authorize(alice_client, pkce_pair, scope=scope), "invalid_scope")


@pytest.mark.parametrize("name", ["response_type", "scope", "code_challenge", "code_challenge_method"])
def test_it_shows_a_repeated_parameter_as_invalid_request(alice_client, pkce_pair, name):
    params = authorize_params(pkce_pair)
    query = urlencode(params) + "&" + urlencode({name: params[name]})
    assert_error_page_with_back_link(alice_client.get("/getKeys/authorize?" + query), "invalid_request")


def test_it_shows_a_repeated_state_without_echoing_either_state(alice_client, pkce_pair):
    query = urlencode(authorize_params(pkce_pair)) + "&state=second"
    assert_error_page_with_back_link(alice_client.get("/getKeys/authorize?" + query), "invalid_request", state=None)


@pytest.mark.parametrize("name, length", [("state", 1025), ("scope", 300), ("code_challenge", 200)])
def test_it_shows_an_oversized_parameter_as_invalid_request(alice_client, pkce_pair, name, length):
    response = get_authorize(alice_client, pkce_pair, **{name: "x" * length})
    query = assert_error_page_with_back_link(
        response, "invalid_request", state=None if name == "state" else "random-state-value"
    )
    assert "x" * length not in response.content.decode()
    assert "x" * length not in str(query)


def test_the_back_link_keeps_the_redirect_uri_query(alice_client, pkce_pair):
    uri = "https://yourapp.com/callback?tenant=7"
    response = get_authorize(alice_client, pkce_pair, redirect_uri=uri, scope="admin")
    assert response.status_code == 400
    assert back_link(response).startswith(uri + "&error=invalid_scope&")


def test_the_error_page_is_shown_before_login(client, db, pkce_pair):
    response = get_authorize(client, pkce_pair, scope="admin")
    assert_error_page_with_back_link(response, "invalid_scope")


def test_the_error_page_does_not_echo_markup(alice_client, pkce_pair):
    response = get_authorize(alice_client, pkce_pair, state="<script>alert(1)</script>", scope="admin")
    assert b"<script>alert(1)</script>" not in response.content


# --- Defaults ------------------------------------------------------------------------------------


def test_an_omitted_scope_means_key_read(alice_client, pkce_pair):
    location = approve(alice_client, authorize_params(pkce_pair, scope=None))
    response = exchange(Client(), query_of(location)["code"][0], pkce_pair)
    assert response.status_code == 200
    assert response.json()["scope"] == "key:read"


def test_an_omitted_state_is_not_echoed(alice_client, pkce_pair):
    location = approve(alice_client, authorize_params(pkce_pair, state=None))
    query = query_of(location)
    assert "state" not in query
    assert query["iss"] == [ISSUER]
    assert "code" in query


def test_an_omitted_state_is_not_echoed_on_deny(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair, state=None)
    query = query_of(post_decision(alice_client, page, decision="deny")["Location"])
    assert "state" not in query
    assert query["error"] == ["access_denied"]


# --- Login round trip -------------------------------------------------------------------------------


def test_an_anonymous_user_is_sent_to_login_and_back_to_the_same_request(alice, pkce_pair):
    browser = Client()
    url = authorize_url(authorize_params(pkce_pair))
    response = browser.get(url)
    assert response.status_code == 302
    login_url, _, query = response["Location"].partition("?")
    assert login_url == resolve_url(settings.LOGIN_URL)
    assert parse_qs(query)[REDIRECT_FIELD_NAME] == [url]

    login_page = browser.get(response["Location"])
    assert login_page.status_code == 200
    logged_in = browser.post(login_url, {"username": "alice", "password": "alice-password", REDIRECT_FIELD_NAME: url})
    assert logged_in.status_code == 302
    assert logged_in["Location"] == url

    consent = browser.get(logged_in["Location"])
    assert consent.status_code == 200
    assert b"yourapp.com" in consent.content
    location = post_decision(browser, consent)["Location"]
    assert query_of(location)["state"] == ["random-state-value"]


# --- The consent page --------------------------------------------------------------------------------


def test_the_consent_page_names_the_client_host(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    assert page.status_code == 200
    assert b'data-testid="client-host">yourapp.com<' in page.content
    assert b"can act as you" in page.content


def test_the_consent_page_offers_a_new_key_by_default(alice_client, pkce_pair, alice_key):
    page = get_authorize(alice_client, pkce_pair)
    assert "Create a new key for yourapp.com" in page.content.decode()
    assert "checked" in radio(page, "new")
    assert "checked" not in radio(page, str(alice_key[0].pk))


def test_the_consent_page_lists_only_the_users_active_keys(alice, alice_client, bob, pkce_pair):
    laptop, _ = key_create(user=alice, name="laptop", context=SYSTEM)
    old, _ = key_create(user=alice, name="old-server", context=SYSTEM)
    key_revoke(key=old, context=SYSTEM)
    bobs, _ = key_create(user=bob, name="bobs-key", context=SYSTEM)

    page = get_authorize(alice_client, pkce_pair)
    assert key_choices(page) == ["new", str(laptop.pk)]
    text = page.content.decode()
    assert "laptop" in text and laptop.prefix in text
    assert "old-server" not in text and old.prefix not in text
    assert "bobs-key" not in text and bobs.prefix not in text


def test_the_consent_page_preselects_the_existing_key_chosen_last_time(alice_client, pkce_pair, alice_key):
    key = alice_key[0]
    approve(alice_client, authorize_params(pkce_pair), key=str(key.pk))
    page = get_authorize(alice_client, pkce_pair)
    assert "checked" in radio(page, str(key.pk))
    assert "checked" not in radio(page, "new")


def test_the_consent_page_is_shown_again_for_a_host_already_granted(alice_client, pkce_pair):
    approve(alice_client, authorize_params(pkce_pair))
    page = get_authorize(alice_client, pkce_pair)
    assert page.status_code == 200
    assert b'name="decision" value="allow"' in page.content
    # The key created last time is not pre-selected: a new consent defaults to a new key.
    assert "checked" in radio(page, "new")


def test_the_consent_page_cannot_be_framed(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    assert "frame-ancestors 'none'" in page["Content-Security-Policy"]
    assert page["X-Frame-Options"] == "DENY"


def test_the_consent_page_sends_no_referrer(alice_client, pkce_pair):
    assert get_authorize(alice_client, pkce_pair)["Referrer-Policy"] == "no-referrer"


def test_the_consent_page_is_not_cached(alice_client, pkce_pair):
    cache_control = get_authorize(alice_client, pkce_pair)["Cache-Control"]
    assert "no-store" in cache_control or "no-cache" in cache_control


def test_the_consent_page_loads_nothing_from_other_origins(alice_client, pkce_pair):
    text = get_authorize(alice_client, pkce_pair).content.decode()
    external = re.findall(r'(?:src|href|action|srcset|data)\s*=\s*["\']?\s*(?:[a-z]+:)?//', text, re.I)
    assert external == []
    assert "@import" not in text and "url(http" not in text


def test_the_consent_page_needs_no_javascript(alice_client, pkce_pair):
    text = get_authorize(alice_client, pkce_pair).content.decode()
    assert "<script" not in text
    assert '<form method="post"' in text


def test_the_consent_form_carries_only_an_opaque_reference(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    form = re.search(r'<form method="post" action="/getKeys/authorize".*?</form>', page.content.decode(), re.S)[0]
    hidden = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', form))
    assert set(hidden) == {"csrfmiddlewaretoken", "request"}
    assert pkce_pair.challenge not in form and "random-state-value" not in form


# --- The decision -------------------------------------------------------------------------------------


def test_allow_redirects_with_code_state_and_issuer(alice_client, pkce_pair):
    response = post_decision(alice_client, get_authorize(alice_client, pkce_pair))
    assert response.status_code == 302
    query = query_of(response["Location"])
    assert set(query) == {"code", "state", "iss"}
    assert query["state"] == ["random-state-value"]
    assert query["iss"] == [ISSUER]


def test_deny_redirects_with_access_denied_state_and_issuer(alice_client, pkce_pair):
    response = post_decision(alice_client, get_authorize(alice_client, pkce_pair), decision="deny")
    assert response.status_code == 302
    location = response["Location"]
    assert location.startswith(REDIRECT_URI + "?")
    query = query_of(location)
    assert query["error"] == ["access_denied"]
    assert query["state"] == ["random-state-value"]
    assert query["iss"] == [ISSUER]
    assert "code" not in query
    assert nothing_written()
    assert AuditEvent.objects.filter(kind=AuditEvent.Kind.CONSENT_DENIED).count() == 1


def test_the_issuer_in_the_redirect_is_the_setting_byte_for_byte(alice_client, pkce_pair, settings):
    settings.OAUTH_ISSUER = "https://keys.example.com"
    location = approve(alice_client, authorize_params(pkce_pair))
    assert "&iss=https%3A%2F%2Fkeys.example.com" in location
    assert query_of(location)["iss"] == ["https://keys.example.com"]


def test_the_redirect_goes_to_exactly_the_validated_string(alice_client, pkce_pair):
    uri = "https://yourapp.com/cb;v=1?next=%2Fhome%3Fa%3Db&empty=&x=%7E"
    response = post_decision(alice_client, get_authorize(alice_client, pkce_pair, redirect_uri=uri))
    assert response.status_code == 302
    assert response["Location"].startswith(uri + "&code=")


def test_a_decision_answers_its_request_only_once(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    assert post_decision(alice_client, page).status_code == 302
    again = post_decision(alice_client, page)
    assert again.status_code == 400
    assert "Location" not in again
    assert AuthorizationCode.objects.count() == 1


def test_allow_with_a_new_key_creates_a_key_for_the_host(alice, alice_client, pkce_pair):
    approve(alice_client, authorize_params(pkce_pair))
    key = ApiKey.objects.get(user=alice)
    assert key.created_for_client == "yourapp.com"
    grant = Grant.objects.get(user=alice)
    assert grant.client_id == "yourapp.com"
    assert grant.key == key and grant.key_created_by_consent


def test_allow_with_an_existing_key_hands_out_that_key(alice_client, pkce_pair, alice_key):
    key, raw = alice_key
    location = approve(alice_client, authorize_params(pkce_pair), key=str(key.pk))
    response = exchange(Client(), query_of(location)["code"][0], pkce_pair)
    assert response.json()["access_token"] == raw
    assert ApiKey.objects.count() == 1


def test_the_consent_the_code_and_the_exchange_each_leave_one_audit_event(alice, alice_client, pkce_pair, alice_key):
    # Written with the change each records (accounts.audit.write_with_event).
    key, _ = alice_key
    location = approve(alice_client, authorize_params(pkce_pair), key=str(key.pk))
    assert exchange(Client(), query_of(location)["code"][0], pkce_pair).status_code == 200
    events = AuditEvent.objects.filter(client_id="yourapp.com").order_by("id")
    assert [(e.kind, e.subject_id, e.key_prefix) for e in events] == [
        (AuditEvent.Kind.CONSENT_GRANTED, alice.pk, key.prefix),
        (AuditEvent.Kind.CODE_ISSUED, alice.pk, key.prefix),
        (AuditEvent.Kind.TOKEN_ISSUED, alice.pk, key.prefix),
    ]
    assert [e.actor_id for e in events] == [alice.pk, alice.pk, None]


def test_a_missing_decision_changes_nothing(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    response = alice_client.post("/getKeys/authorize", {"request": consent_request_id(page), "key": "new"})
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()


def test_the_consent_post_requires_a_csrf_token(alice, pkce_pair):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    page = get_authorize(browser, pkce_pair)
    forged = browser.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert forged.status_code == 403
    assert "Location" not in forged
    assert nothing_written() and not ApiKey.objects.exists()

    token = csrf_token_of(page)
    genuine = browser.post(
        "/getKeys/authorize",
        {"csrfmiddlewaretoken": token, "request": consent_request_id(page), "decision": "allow", "key": "new"},
    )
    assert genuine.status_code == 302


def test_the_consent_post_refuses_an_unknown_request_id(alice_client, pkce_pair):
    get_authorize(alice_client, pkce_pair)
    response = alice_client.post("/getKeys/authorize", {"request": "forged", "decision": "allow", "key": "new"})
    assert response.status_code == 400
    assert "Location" not in response and back_link(response) is None
    assert nothing_written() and not ApiKey.objects.exists()


def test_the_consent_post_refuses_an_expired_request(alice_client, pkce_pair, settings):
    settings.OAUTH_PENDING_REQUEST_TTL_SECONDS = 0
    page = get_authorize(alice_client, pkce_pair)
    response = post_decision(alice_client, page)
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()


def test_the_consent_post_refuses_another_users_request(alice_client, bob, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    PendingConsent.objects.update(user=bob)  # the request alice's form names is bound to bob
    response = post_decision(alice_client, page)
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()


def test_the_consent_post_refuses_a_request_after_another_user_signs_in(alice_client, bob, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    alice_client.force_login(bob)
    response = post_decision(alice_client, page)
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()


def test_the_consent_post_refuses_an_anonymous_user(alice_client, pkce_pair):
    page = get_authorize(alice_client, pkce_pair)
    alice_client.logout()
    response = post_decision(alice_client, page)
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()


def test_the_consent_post_refuses_another_users_key(alice_client, bob, pkce_pair):
    bobs_key, _ = key_create(user=bob, name="bobs", context=SYSTEM)
    response = post_decision(alice_client, get_authorize(alice_client, pkce_pair), key=str(bobs_key.pk))
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()
    assert ApiKey.objects.count() == 1


def test_a_refused_choice_shows_the_consent_page_again_with_its_error_and_a_fresh_page_shows_none(
    alice_client, bob, pkce_pair
):
    page = get_authorize(alice_client, pkce_pair)
    assert 'class="form-error"' not in page.content.decode()
    bobs_key, _ = key_create(user=bob, name="bobs", context=SYSTEM)
    response = post_decision(alice_client, page, key=str(bobs_key.pk))
    assert response.status_code == 400
    body = response.content.decode()
    assert '<p class="form-error" role="alert">Choose one of your active keys, or a new key.</p>' in body
    assert 'name="request"' in body, "the same request can still be answered"
    neither = post_decision(alice_client, page, decision="maybe")
    assert '<p class="form-error" role="alert">Choose Allow or Deny.</p>' in neither.content.decode()


def test_the_consent_post_refuses_a_revoked_key(alice_client, pkce_pair, alice_key):
    key = alice_key[0]
    key_revoke(key=key, context=SYSTEM)
    response = post_decision(alice_client, get_authorize(alice_client, pkce_pair), key=str(key.pk))
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()
    assert ApiKey.objects.count() == 1


@pytest.mark.parametrize(
    "key", ["", "0", "-1", "1.0", "1e3", "9" * 19, "9" * 40, "new ", "NEW", "²", "١", "１", "0x1", "1 OR 1=1"]
)
def test_the_consent_post_refuses_a_key_id_that_is_not_a_key(alice_client, pkce_pair, alice_key, key):
    response = post_decision(alice_client, get_authorize(alice_client, pkce_pair), key=key)
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()
    assert ApiKey.objects.count() == 1


def test_the_consent_post_validates_the_stored_request_again(alice_client, pkce_pair, settings):
    page = get_authorize(alice_client, pkce_pair, client_id="localhost", redirect_uri="http://localhost:8080/cb")
    settings.OAUTH_ALLOW_LOOPBACK_CLIENTS = False  # the operator turned loopback apps off meanwhile
    response = post_decision(alice_client, page)
    assert response.status_code == 400
    assert "Location" not in response
    assert nothing_written()


def test_the_authorize_endpoint_refuses_other_methods(alice_client):
    for method in ("put", "delete", "patch"):
        assert getattr(alice_client, method)("/getKeys/authorize").status_code == 405


def test_the_authorize_endpoint_answers_without_a_trailing_slash_redirect(alice_client, pkce_pair):
    query = urlencode(authorize_params(pkce_pair))
    assert alice_client.get("/getKeys/authorize?" + query).status_code == 200
    with_slash = alice_client.get("/getKeys/authorize/?" + query)
    assert with_slash.status_code == 404, "only the path DESIGN.md names is served, and nothing redirects to it"
    assert "Location" not in with_slash
