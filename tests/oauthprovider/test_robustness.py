"""No input makes /getKeys/authorize or /getKeys/token answer 500.

Run on SQLite and on PostgreSQL (DATABASE_URL): PostgreSQL refuses NUL
characters and values longer than a column, where SQLite stores anything.
The test client re-raises any exception a view lets escape, so a crash
fails the test with its traceback; a response must also be below 500.
"""

from urllib.parse import urlencode

import pytest
from django.test import Client

from tests.conftest import CLIENT_ID, REDIRECT_URI, authorize_params, consent_request_id, issue_code

AUTHORIZE_PARAMS = [
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "code_challenge",
    "code_challenge_method",
    "state",
    "resource",
]
TOKEN_PARAMS = ["grant_type", "code", "client_id", "redirect_uri", "code_verifier", "resource"]

# Already percent-encoded, exactly as they travel in a URL or a form body.
NASTY_ENCODED = {
    "nul": "%00",
    "nul-inside": "yourapp.com%00.evil.com",
    "broken-percent": "%ZZ",
    "lone-percent": "%",
    "truncated-percent": "abc%2",
    "invalid-utf8": "%FF%FE",
    "overlong-utf8": "%C0%AF",
    "utf8-surrogate": "%ED%A0%80",
    "control-chars": "%01%02%1B%7F",
    "crlf": "a%0D%0ASet-Cookie:%20x=1",
    "tab": "a%09b",
    "rtl-override": "%E2%80%AE",
    "emoji": "%F0%9F%98%80",
    "unicode-digit": "%C2%B2",
    "html": "%3Cscript%3Ealert(1)%3C%2Fscript%3E",
    "sql": "'%20OR%201=1--",
    "10k": "a" * 10_000,
    "10k-unicode": "%C3%A9" * 10_000,
    "empty": "",
    "spaces": "%20%20%20",
    "plus": "+",
}


def nasty_query(name: str, encoded: str, base: dict[str, str]) -> str:
    others = urlencode({k: v for k, v in base.items() if k != name})
    return f"{others}&{name}={encoded}" if others else f"{name}={encoded}"


def assert_handled(response) -> None:
    assert response.status_code < 500, response.content[:500]


@pytest.fixture
def base_authorize(pkce_pair) -> dict[str, str]:
    return authorize_params(pkce_pair)


# --- /getKeys/authorize (GET) ---------------------------------------------------------------


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", AUTHORIZE_PARAMS)
def test_authorize_survives_any_value_in_any_parameter(alice_client, base_authorize, name, value):
    assert_handled(alice_client.get("/getKeys/authorize?" + nasty_query(name, value, base_authorize)))


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", ["client_id", "redirect_uri", "state"])
def test_authorize_survives_any_value_for_an_anonymous_user(client, db, base_authorize, name, value):
    assert_handled(client.get("/getKeys/authorize?" + nasty_query(name, value, base_authorize)))


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
def test_authorize_survives_nasty_parameter_names(alice_client, base_authorize, value):
    assert_handled(alice_client.get("/getKeys/authorize?" + urlencode(base_authorize) + f"&{value}=1"))


def test_authorize_survives_raw_bytes_in_the_query_string(alice_client, base_authorize):
    # What a server hands over for bytes that were never percent-encoded (WSGI: latin-1).
    raw = urlencode(base_authorize) + "&state=\xff\xfe\x00\x80"
    assert_handled(alice_client.get("/getKeys/authorize", QUERY_STRING=raw))


def test_authorize_survives_thousands_of_parameters(alice_client, base_authorize):
    query = urlencode(base_authorize) + "&" + "&".join(f"p{i}=x" for i in range(5000))
    assert_handled(alice_client.get("/getKeys/authorize?" + query))


def test_authorize_survives_every_parameter_duplicated(alice_client, base_authorize):
    query = urlencode(base_authorize) + "&" + urlencode(base_authorize)
    response = alice_client.get("/getKeys/authorize?" + query)
    assert response.status_code == 400
    assert "Location" not in response


def test_authorize_survives_a_parameter_repeated_a_thousand_times(alice_client, base_authorize):
    query = urlencode(base_authorize) + "&" + "&".join(["state=x"] * 900)
    assert_handled(alice_client.get("/getKeys/authorize?" + query))


def test_authorize_survives_a_huge_query_string(alice_client, base_authorize):
    assert_handled(alice_client.get("/getKeys/authorize?" + urlencode(base_authorize) + "&junk=" + "a" * 1_000_000))


def test_authorize_survives_no_parameters_at_all(alice_client, client, db):
    assert_handled(alice_client.get("/getKeys/authorize"))
    assert_handled(client.get("/getKeys/authorize"))


@pytest.mark.parametrize(
    "state",
    ["\ufffd" * 300, "é" * 1024, "\u202e" + "x" * 1000, "😀" * 256, "a b+c&d=e#f?g/h%i"],
)
def test_an_allowed_but_unusual_state_goes_through_the_whole_flow(alice_client, pkce_pair, state):
    page = alice_client.get("/getKeys/authorize?" + urlencode(authorize_params(pkce_pair, state=state)))
    assert page.status_code == 200
    response = alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 302


def test_a_longest_idn_client_goes_through_the_whole_flow(alice_client, pkce_pair):
    host = ".".join(["ü" * 20] * 6) + ".example"  # long once punycoded
    from oauthprovider.protocol import validate_client_id

    punycode = validate_client_id(host, allow_loopback=False).host
    page = alice_client.get(
        "/getKeys/authorize?"
        + urlencode(authorize_params(pkce_pair, client_id=host, redirect_uri=f"https://{punycode}/cb"))
    )
    assert page.status_code == 200
    response = alice_client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 302


# --- /getKeys/authorize (POST, the decision) ----------------------------------------------------


@pytest.fixture
def consent_page(alice_client, base_authorize):
    page = alice_client.get("/getKeys/authorize?" + urlencode(base_authorize))
    assert page.status_code == 200
    return page


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", ["request", "decision", "key"])
def test_the_decision_survives_any_value_in_any_field(alice_client, consent_page, name, value):
    fields = {"request": consent_request_id(consent_page), "decision": "allow", "key": "new"}
    body = nasty_query(name, value, fields)
    response = alice_client.post("/getKeys/authorize", body, content_type="application/x-www-form-urlencoded")
    assert_handled(response)


@pytest.mark.parametrize(
    "content_type, body",
    [
        ("application/x-www-form-urlencoded", b""),
        ("application/json", b'{"decision": "allow"}'),
        ("text/plain", b"decision=allow"),
        ("multipart/form-data; boundary=x", b"--x\r\nbroken"),
        ("multipart/form-data", b"no boundary"),
        ("application/x-www-form-urlencoded; charset=utf-16", b"decision=allow"),
        ("application/x-www-form-urlencoded", b"decision=allow&" + b"&".join(b"f%d=1" % i for i in range(5000))),
        ("application/x-www-form-urlencoded", b"key=" + b"9" * 3_000_000),
    ],
    ids=["empty", "json", "text", "broken-multipart", "multipart-no-boundary", "utf16", "5000-fields", "3MB"],
)
def test_the_decision_survives_odd_bodies(alice_client, consent_page, content_type, body):
    assert_handled(alice_client.generic("POST", "/getKeys/authorize", body, content_type=content_type))


def test_the_decision_survives_odd_bodies_with_csrf_checks(alice, base_authorize):
    browser = Client(enforce_csrf_checks=True)
    browser.force_login(alice)
    browser.get("/getKeys/authorize?" + urlencode(base_authorize))
    for body, content_type in [
        (b"", "application/x-www-form-urlencoded"),
        (b"csrfmiddlewaretoken=%00&decision=allow", "application/x-www-form-urlencoded"),
        (b"a=" + b"x" * 3_000_000, "application/x-www-form-urlencoded"),
        (b"&".join(b"f%d=1" % i for i in range(5000)), "application/x-www-form-urlencoded"),
    ]:
        assert_handled(browser.generic("POST", "/getKeys/authorize", body, content_type=content_type))


# --- /getKeys/token --------------------------------------------------------------------------


@pytest.fixture
def base_token(alice_client, pkce_pair) -> dict[str, str]:
    return {
        "grant_type": "authorization_code",
        "code": issue_code(alice_client, pkce_pair),
        "client_id": CLIENT_ID,
        "redirect_uri": REDIRECT_URI,
        "code_verifier": pkce_pair.verifier,
    }


def post_token(body: bytes | str, content_type: str = "application/x-www-form-urlencoded", **extra):
    return Client().generic("POST", "/getKeys/token", body, content_type=content_type, **extra)


def assert_json_error(response) -> None:
    """Refused the RFC 6749 5.2 way: a JSON error."""
    assert_handled(response)
    assert response.status_code in (400, 429)
    assert response["Content-Type"] == "application/json"
    assert response.json()["error"]


def assert_json_answer(response) -> None:
    """Some odd inputs are harmless (an ignored charset, an empty value): then any JSON answer will do."""
    assert_handled(response)
    assert response["Content-Type"] == "application/json"


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
@pytest.mark.parametrize("name", TOKEN_PARAMS)
def test_token_survives_any_value_in_any_parameter(base_token, name, value):
    assert_json_answer(post_token(nasty_query(name, value, base_token)))


@pytest.mark.parametrize("value", NASTY_ENCODED.values(), ids=NASTY_ENCODED.keys())
def test_token_survives_nasty_parameter_names(base_token, value):
    response = post_token(urlencode(base_token) + f"&{value}=1")
    assert_handled(response)


def test_token_survives_raw_invalid_utf8_in_the_body(base_token):
    assert_json_error(post_token(urlencode(base_token).encode() + b"&code=\xff\xfe\x80"))
    assert_json_error(post_token(b"grant_type=authorization_code&code=\xff&client_id=\xc0\xaf&redirect_uri=\x00"))


def test_token_survives_an_empty_body(db):
    assert_json_error(post_token(b""))


@pytest.mark.parametrize(
    "content_type",
    [
        "",
        "application/json",
        "text/plain",
        "multipart/form-data; boundary=x",
        "multipart/form-data",
        "application/x-www-form-urlencoded; charset=utf-16",
        "application/x-www-form-urlencoded; charset=hex",
        # Not "charset=\x00": Django's WSGIRequest() raises ValueError on it before
        # any view or middleware runs; gunicorn refuses NUL in headers first.
        "application/x-www-form-urlencoded; charset*=utf-8''%ZZ",
        "application/x-www-form-urlencoded; charset*=hex''x",
        "application/x-www-form-urlencoded;;;=;",
        "application/x-www-form-urlencoded" + "; a=b" * 500,
    ],
)
def test_token_survives_wrong_content_types(base_token, content_type):
    assert_json_answer(post_token(urlencode(base_token), content_type=content_type))


def test_token_survives_a_json_body(base_token):
    import json

    assert_json_error(post_token(json.dumps(base_token), content_type="application/json"))


def test_token_survives_thousands_of_parameters(base_token):
    body = urlencode(base_token) + "&" + "&".join(f"p{i}=x" for i in range(5000))
    assert_json_error(post_token(body))


def test_token_survives_every_parameter_duplicated(base_token):
    assert_json_error(post_token(urlencode(base_token) + "&" + urlencode(base_token)))


def test_token_survives_a_huge_body(base_token):
    assert_json_error(post_token(urlencode(base_token) + "&junk=" + "a" * 3_000_000))


def test_token_survives_a_huge_single_value(base_token):
    assert_json_error(post_token(urlencode({**base_token, "code": "c" * 2_000_000})))


def test_token_survives_a_nul_in_the_user_agent(base_token):
    response = post_token(urlencode(base_token), HTTP_USER_AGENT="evil\x00agent")
    assert_handled(response)


def test_token_survives_a_nul_in_the_user_agent_on_an_invalid_grant(db):
    assert_json_error(
        post_token(
            urlencode(
                {"grant_type": "authorization_code", "code": "x", "client_id": "a.b", "redirect_uri": "https://a.b/"}
            ),
            HTTP_USER_AGENT="\x00" * 400,
        )
    )


def test_the_decision_survives_a_nul_in_the_user_agent(alice_client, consent_page):
    fields = {"request": consent_request_id(consent_page), "decision": "allow", "key": "new"}
    assert_handled(alice_client.post("/getKeys/authorize", fields, HTTP_USER_AGENT="evil\x00agent"))


@pytest.mark.parametrize("forwarded", ["\x00", "fe80::1%eth0", "not-an-ip", "1.2.3.4, " * 1000, "::ffff:1.2.3.4"])
def test_token_survives_odd_forwarded_addresses(base_token, settings, forwarded):
    settings.TRUSTED_PROXY_COUNT = 1
    assert_handled(post_token(urlencode(base_token), HTTP_X_FORWARDED_FOR=forwarded))


def test_a_valid_replay_survives_odd_request_headers(base_token, settings):
    settings.TRUSTED_PROXY_COUNT = 1
    assert post_token(urlencode(base_token)).status_code == 200
    response = post_token(urlencode(base_token), HTTP_USER_AGENT="\x00" * 500, HTTP_X_FORWARDED_FOR="fe80::1%eth0")
    assert_json_error(response)


# --- Issue #13 items 13-15: inputs that used to answer 500 ---------------------------------


def test_register_survives_deeply_nested_json(db):
    """16,000 "[" made json.loads raise RecursionError."""
    response = Client(raise_request_exception=False).post(
        "/getKeys/register", "[" * 16_000, content_type="application/json"
    )
    assert response.status_code == 400
    assert response.json()["error"] == "invalid_client_metadata"


@pytest.mark.parametrize("path", ["/no-such-page", "/getKeys/no-such-endpoint", "/accounts/no-such-page/"])
@pytest.mark.parametrize("content_type", ["multipart/form-data", "multipart/form-data; boundary="])
def test_a_multipart_body_without_a_boundary_to_an_unknown_url_is_a_404(db, settings, path, content_type):
    """With a csrftoken cookie, Django's 404 handler checked the POST's CSRF token and read the broken body."""
    settings.DEBUG = False
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.cookies["csrftoken"] = "a" * 32
    response = browser.generic("POST", path, b"x", content_type=content_type)
    assert response.status_code == 404
    assert b"There is nothing at this address." in response.content


def test_a_multipart_body_without_a_boundary_to_a_form_is_a_400(db, settings):
    settings.DEBUG = False
    browser = Client(enforce_csrf_checks=True, raise_request_exception=False)
    browser.cookies["csrftoken"] = "a" * 32
    response = browser.generic("POST", "/accounts/login/", b"x", content_type="multipart/form-data")
    assert response.status_code == 400


def test_the_error_pages_render(db, settings, rf):
    from config import views
    from oauthprovider.availability import server_error

    settings.DEBUG = False
    request = rf.get("/")
    assert views.bad_request(request, Exception()).status_code == 400
    assert server_error(request).status_code == 500
