"""The OAuth rules of oauthprovider.protocol, read like the RFCs: no database, no HTTP."""

import base64

import pytest

from oauthprovider.protocol import (
    SCOPE_KEY_READ,
    DeviceTokenRequest,
    OAuthError,
    format_user_code,
    hash_secret,
    new_user_code,
    normalize_user_code,
    parse_authorization_request,
    parse_client,
    parse_device_authorization_request,
    parse_redirect_uri,
    parse_resources,
    parse_scope,
    parse_token_request,
    pkce_verify,
    s256_challenge,
    self_named_client,
    single_param,
    usable_state,
    validate_client_id,
    validate_redirect_uri,
    with_query,
)

# RFC 7636 Appendix B, character for character. (A copy that circulates with
# "-mJ92IgEhSUDBSEJ0Sje..." / "...JTguCQoX2CuUHT-TkmT34EY6Xqo" is corrupted:
# those two strings are not a SHA-256 pair; the test below derives the
# verifier from the appendix's octets to pin the right one.)
RFC7636_OCTETS = bytes(
    [116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186,
     22, 212, 37, 77, 105, 214, 191, 240, 91, 88, 5, 88, 83, 132, 141, 121]
)  # fmt: skip
RFC7636_VERIFIER = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
RFC7636_CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"


def client(client_id: str = "yourapp.com", *, allow_loopback: bool = True):
    return validate_client_id(client_id, allow_loopback=allow_loopback)


def refuses_redirect(uri: str, client_id: str = "yourapp.com") -> OAuthError:
    with pytest.raises(OAuthError) as caught:
        validate_redirect_uri(uri, client(client_id))
    assert caught.value.error == "invalid_request"
    return caught.value


# --- Parameters ------------------------------------------------------------------------------


def test_a_missing_parameter_is_none():
    assert single_param({}, "state", max_length=10) is None


def test_an_empty_parameter_counts_as_missing():
    assert single_param({"state": [""]}, "state", max_length=10) is None


def test_a_repeated_parameter_is_refused():
    with pytest.raises(OAuthError) as caught:
        single_param({"state": ["a", "b"]}, "state", max_length=10)
    assert caught.value.error == "invalid_request"


def test_a_repeated_parameter_is_refused_even_when_one_copy_is_empty():
    with pytest.raises(OAuthError):
        single_param({"state": ["", "b"]}, "state", max_length=10)


def test_an_oversized_parameter_is_refused():
    with pytest.raises(OAuthError) as caught:
        single_param({"state": ["x" * 11]}, "state", max_length=10)
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize("char", ["\x00", "\t", "\n", "\r", "\x1f", "\x7f", "\x85", "\x9f"])
def test_a_parameter_with_a_control_character_is_refused(char):
    with pytest.raises(OAuthError):
        single_param({"state": [f"a{char}b"]}, "state", max_length=10)


def test_a_repeated_client_id_is_refused_by_the_client_check():
    with pytest.raises(OAuthError) as caught:
        parse_client({"client_id": ["yourapp.com", "evil.com"]}, allow_loopback=True)
    assert caught.value.error == "invalid_request"
    assert "client_id" in caught.value.description


# --- client_id ----------------------------------------------------------------------------------


def test_the_client_id_is_the_lower_cased_hostname():
    found = client("YourApp.COM")
    assert found.client_id == "YourApp.COM"
    assert found.host == "yourapp.com"
    assert not found.is_self_named
    assert found.recorded == "yourapp.com"


def test_a_unicode_client_id_is_normalised_to_punycode():
    found = client("bücher.example")
    assert found.host == "xn--bcher-kva.example"
    assert found.recorded == "xn--bcher-kva.example"


def test_a_punycode_client_id_is_kept_as_punycode():
    found = client("xn--bcher-kva.example")
    assert found.host == "xn--bcher-kva.example"
    assert found.recorded == "xn--bcher-kva.example"


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST"])
def test_loopback_client_ids_are_apps_naming_themselves(host):
    found = client(host)
    assert found.is_self_named
    assert found.recorded == host.lower()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_client_ids_are_refused_when_turned_off(host):
    with pytest.raises(OAuthError) as caught:
        client(host, allow_loopback=False)
    assert caught.value.error == "invalid_request"
    assert "loopback" in caught.value.description


def test_a_missing_client_id_is_refused():
    with pytest.raises(OAuthError) as caught:
        validate_client_id(None, allow_loopback=True)
    assert "client_id" in caught.value.description


@pytest.mark.parametrize(
    "client_id",
    [
        "https://yourapp.com",
        "yourapp.com/callback",
        "yourapp.com:443",
        "user@yourapp.com",
        "yourapp.com?x",
        "yourapp.com#x",
        "yourapp.com\\evil",
        "your%61pp.com",
        "your app.com",
        "yourapp",  # one label: not a public hostname
        "yourapp.com.",
        ".yourapp.com",
        "your..app.com",
        "-yourapp.com",
        "yourapp-.com",
        "your_app.com",
        "192.168.0.1",
        "10.0.0.1",
        "[::2]",
        "a" * 64 + ".com",  # a label longer than 63
        ("a" * 62 + ".") * 4 + "com",  # a name longer than 253
        "yourapp.com\x00",
    ],
)
def test_a_client_id_that_is_not_a_hostname_is_refused(client_id):
    with pytest.raises(OAuthError) as caught:
        validate_client_id(client_id, allow_loopback=True)
    assert caught.value.error == "invalid_request"


# --- redirect_uri ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "uri",
    [
        "https://yourapp.com/callback",
        "https://yourapp.com",
        "https://yourapp.com/",
        "https://yourapp.com:8443/callback",
        "https://YOURAPP.com/callback",
        "https://yourapp.com/callback?next=%2Fhome&x=1",
        "https://yourapp.com/a/b/c;params",
        "https://yourapp.com/..foo/bar.",
    ],
)
def test_a_redirect_uri_on_the_client_host_is_accepted_unchanged(uri):
    assert validate_redirect_uri(uri, client()) == uri


def test_a_missing_redirect_uri_is_refused():
    with pytest.raises(OAuthError) as caught:
        validate_redirect_uri(None, client())
    assert "redirect_uri" in caught.value.description


@pytest.mark.parametrize(
    "uri", ["https://evil@yourapp.com/", "https://user:pass@yourapp.com/", "https://yourapp.com@evil.com/"]
)
def test_a_redirect_uri_with_userinfo_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize(
    "uri", ["https://yourapp.com\\@evil.com/", "https://evil.com\\.yourapp.com/", "https://yourapp.com/\\evil.com"]
)
def test_a_redirect_uri_with_a_backslash_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize(
    "uri", ["https:/evil.com/", "https:/yourapp.com/", "https:yourapp.com/", "//yourapp.com/", "https:///yourapp.com/"]
)
def test_a_redirect_uri_that_is_not_absolute_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize("uri", ["https://yourapp.com/callback#", "https://yourapp.com/callback#frag"])
def test_a_redirect_uri_with_a_fragment_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize("char", ["\t", "\n", "\r", "\x00", "\x01", "\x7f", " "])
def test_a_redirect_uri_with_control_characters_or_whitespace_is_refused(char):
    refuses_redirect(f"https://your{char}app.com/callback")
    refuses_redirect(f"https://yourapp.com/call{char}back")


@pytest.mark.parametrize("uri", ["https://yourapp.com/café", "https://yourapp.com/\u2024", "https://yourаpp.com/"])
def test_a_redirect_uri_with_raw_non_ascii_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize("uri", ["https://yourapp.com/%ZZ", "https://yourapp.com/%", "https://yourapp.com/%2"])
def test_a_redirect_uri_with_a_broken_percent_encoding_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://yourapp.com/a/../callback",
        "https://yourapp.com/..",
        "https://yourapp.com/./callback",
        "https://yourapp.com/a/%2e%2e/callback",
        "https://yourapp.com/a/%2E%2E/callback",
        "https://yourapp.com/a/.%2e/callback",
        "https://yourapp.com/a/%2e/callback",
        "https://yourapp.com/a/..?x=1",
    ],
)
def test_a_redirect_uri_with_dot_segments_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize(
    "uri",
    [
        "https://yourapp.com.evil.com/callback",
        "https://evilyourapp.com/callback",
        "https://evil.yourapp.com/callback",
        "https://yourapp.co/callback",
        "https://yourapp%2ecom/callback",
        "https://evil.com/yourapp.com",
        "https://evil.com?yourapp.com",
    ],
)
def test_a_redirect_uri_on_another_host_is_refused(uri):
    refuses_redirect(uri)


def test_a_redirect_uri_with_plain_http_is_refused_for_a_website():
    refuses_redirect("http://yourapp.com/callback")


@pytest.mark.parametrize("uri", ["ftp://yourapp.com/", "javascript://yourapp.com/%0aalert(1)", "HTTPS://yourapp.com/"])
def test_a_redirect_uri_with_another_scheme_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize(
    "uri", ["https://yourapp.com:0/", "https://yourapp.com:65536/", "https://yourapp.com:/", "https://yourapp.com:x/"]
)
def test_a_redirect_uri_with_an_invalid_port_is_refused(uri):
    refuses_redirect(uri)


@pytest.mark.parametrize(
    "client_id, uri",
    [
        ("localhost", "http://localhost:53682/callback"),
        ("localhost", "http://localhost/callback"),
        ("127.0.0.1", "http://127.0.0.1:8080/"),
        ("[::1]", "http://[::1]:9999/cb"),
        ("localhost", "https://localhost:8443/cb"),
    ],
)
def test_a_loopback_client_may_use_http_on_any_port(client_id, uri):
    assert validate_redirect_uri(uri, client(client_id)) == uri


@pytest.mark.parametrize("uri", ["http://127.0.0.1:8080/", "http://[::1]:1/cb", "https://localhost/cb"])
def test_an_app_naming_itself_may_come_back_to_any_loopback_address(uri):
    assert validate_redirect_uri(uri, client("localhost")) == uri


@pytest.mark.parametrize(
    "uri", ["http://evil.com/", "https://yourapp.com/cb", "http://localhost.evil.com/", "http://127.0.0.2/"]
)
def test_an_app_naming_itself_may_not_come_back_anywhere_else(uri):
    refuses_redirect(uri, client_id="localhost")


def test_an_idn_client_redirects_to_its_punycode_host():
    uri = "https://xn--bcher-kva.example/callback"
    assert validate_redirect_uri(uri, client("bücher.example")) == uri


def test_an_idn_client_may_not_use_a_raw_unicode_redirect_host():
    refuses_redirect("https://bücher.example/callback", client_id="bücher.example")


# --- with_query -------------------------------------------------------------------------------


def test_with_query_starts_a_query_when_there_is_none():
    assert with_query("https://yourapp.com/cb", {"code": "abc"}) == "https://yourapp.com/cb?code=abc"


def test_with_query_keeps_the_existing_query():
    assert with_query("https://yourapp.com/cb?x=1", {"code": "abc"}) == "https://yourapp.com/cb?x=1&code=abc"


@pytest.mark.parametrize("uri", ["https://yourapp.com/cb?", "https://yourapp.com/cb?x=1&"])
def test_with_query_adds_no_extra_separator(uri):
    assert with_query(uri, {"code": "abc"}) == uri + "code=abc"


def test_with_query_encodes_values():
    result = with_query("https://yourapp.com/cb", {"state": "a b&c=d/é", "iss": "https://keys.example.com"})
    assert result == "https://yourapp.com/cb?state=a+b%26c%3Dd%2F%C3%A9&iss=https%3A%2F%2Fkeys.example.com"


# --- Scope --------------------------------------------------------------------------------------


def test_an_omitted_scope_means_key_read():
    assert parse_scope(None) == SCOPE_KEY_READ


@pytest.mark.parametrize("scope", ["key:read", "key:read key:read", " key:read "])
def test_the_key_read_scope_is_accepted(scope):
    assert parse_scope(scope) == SCOPE_KEY_READ


@pytest.mark.parametrize("scope", ["admin", "key:read admin", "key:write", "KEY:READ", " ", "openid"])
def test_any_other_scope_is_invalid(scope):
    with pytest.raises(OAuthError) as caught:
        parse_scope(scope)
    assert caught.value.error == "invalid_scope"


# --- PKCE -----------------------------------------------------------------------------------------


def test_the_rfc_7636_appendix_b_verifier_is_the_base64url_of_its_octets():
    assert base64.urlsafe_b64encode(RFC7636_OCTETS).rstrip(b"=").decode() == RFC7636_VERIFIER


def test_the_s256_challenge_matches_rfc_7636_appendix_b():
    assert s256_challenge(RFC7636_VERIFIER) == RFC7636_CHALLENGE


def test_the_rfc_7636_appendix_b_verifier_verifies():
    assert pkce_verify(RFC7636_VERIFIER, RFC7636_CHALLENGE)


def test_a_wrong_verifier_does_not_verify():
    assert not pkce_verify(RFC7636_VERIFIER[:-1] + "m", RFC7636_CHALLENGE)


def test_a_missing_verifier_does_not_verify():
    assert not pkce_verify(None, RFC7636_CHALLENGE)


def test_the_challenge_itself_is_not_a_verifier():
    assert not pkce_verify(RFC7636_CHALLENGE, RFC7636_CHALLENGE)


@pytest.mark.parametrize(
    "verifier",
    ["a" * 42, "a" * 256, "a" * 42 + "+", "a" * 42 + "/", "a" * 42 + "=", "a" * 42 + "é", "a" * 42 + " "],
)
def test_a_verifier_outside_rfc_7636_syntax_does_not_verify(verifier):
    assert not pkce_verify(verifier, s256_challenge(verifier.encode("ascii", "replace").decode()))


@pytest.mark.parametrize("verifier", ["a" * 43, "-._~" * 32, "b" * 255])
def test_verifiers_of_43_to_255_unreserved_characters_verify(verifier):
    assert pkce_verify(verifier, s256_challenge(verifier))


# --- Whole requests -----------------------------------------------------------------------------------


def authorization_params(**overrides):
    params = {
        "client_id": ["yourapp.com"],
        "redirect_uri": ["https://yourapp.com/callback"],
        "response_type": ["code"],
        "code_challenge": [RFC7636_CHALLENGE],
        "code_challenge_method": ["S256"],
        "state": ["xyz"],
    }
    params.update({k: v for k, v in overrides.items()})
    return {k: v for k, v in params.items() if v is not None}


def parse(params):
    """The three steps in the authorization endpoint's order."""
    found = parse_client(params, allow_loopback=True)
    return parse_authorization_request(params, client=found, redirect_uri=parse_redirect_uri(params, found))


def test_a_complete_authorization_request_parses():
    parsed = parse(authorization_params())
    assert parsed.client.host == "yourapp.com"
    assert parsed.redirect_uri == "https://yourapp.com/callback"
    assert parsed.scope == SCOPE_KEY_READ
    assert parsed.code_challenge == RFC7636_CHALLENGE
    assert parsed.state == "xyz"


def test_the_client_id_is_checked_before_the_redirect_uri_and_the_rest():
    with pytest.raises(OAuthError) as caught:
        parse(authorization_params(client_id=None, redirect_uri=["https://evil.com/"], response_type=["token"]))
    assert "client_id" in caught.value.description


def test_the_redirect_uri_is_checked_before_the_rest():
    with pytest.raises(OAuthError) as caught:
        parse(authorization_params(redirect_uri=["https://evil.com/"], response_type=["token"], scope=["x"]))
    assert "redirect_uri" in caught.value.description


@pytest.mark.parametrize(
    "overrides, error",
    [
        ({"response_type": None}, "invalid_request"),
        ({"response_type": ["token"]}, "unsupported_response_type"),
        ({"scope": ["admin"]}, "invalid_scope"),
        ({"code_challenge": None}, "invalid_request"),
        ({"code_challenge_method": None}, "invalid_request"),
        ({"code_challenge_method": ["plain"]}, "invalid_request"),
        ({"code_challenge": [RFC7636_CHALLENGE + "="]}, "invalid_request"),
        ({"code_challenge": ["short"]}, "invalid_request"),
        ({"scope": ["key:read", "key:read"]}, "invalid_request"),
    ],
)
def test_later_errors_come_after_a_valid_client_and_redirect_uri_with_a_usable_state(overrides, error):
    params = authorization_params(**overrides)
    found = parse_client(params, allow_loopback=True)
    redirect_uri = parse_redirect_uri(params, found)
    with pytest.raises(OAuthError) as caught:
        parse_authorization_request(params, client=found, redirect_uri=redirect_uri)
    assert caught.value.error == error
    assert redirect_uri == "https://yourapp.com/callback"
    assert usable_state(params) == "xyz"


@pytest.mark.parametrize("state", [["a", "b"], ["x" * 1025], ["a\x00b"]])
def test_a_state_at_fault_is_an_error_and_not_usable_for_the_report(state):
    params = authorization_params(state=state)
    found = parse_client(params, allow_loopback=True)
    with pytest.raises(OAuthError) as caught:
        parse_authorization_request(params, client=found, redirect_uri=parse_redirect_uri(params, found))
    assert caught.value.error == "invalid_request"
    assert usable_state(params) is None


def token_params(**overrides):
    params = {
        "grant_type": ["authorization_code"],
        "code": ["the-code"],
        "client_id": ["yourapp.com"],
        "redirect_uri": ["https://yourapp.com/callback"],
        "code_verifier": [RFC7636_VERIFIER],
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


def test_a_complete_token_request_parses():
    parsed = parse_token_request(token_params())
    assert parsed.code == "the-code"
    assert parsed.code_verifier == RFC7636_VERIFIER


@pytest.mark.parametrize("name", ["grant_type", "code", "client_id", "redirect_uri"])
def test_a_token_request_missing_a_parameter_is_invalid(name):
    with pytest.raises(OAuthError) as caught:
        parse_token_request(token_params(**{name: None}))
    assert caught.value.error == "invalid_request"


@pytest.mark.parametrize("name", ["grant_type", "code", "client_id", "redirect_uri", "code_verifier"])
def test_a_token_request_repeating_a_parameter_is_invalid(name):
    with pytest.raises(OAuthError) as caught:
        parse_token_request(token_params(**{name: ["a", "b"]}))
    assert caught.value.error == "invalid_request"


def test_a_token_request_without_a_verifier_is_left_to_the_redemption():
    assert parse_token_request(token_params(code_verifier=None)).code_verifier is None


@pytest.mark.parametrize("grant_type", ["client_credentials", "refresh_token", "password", "AUTHORIZATION_CODE"])
def test_other_grant_types_are_unsupported(grant_type):
    with pytest.raises(OAuthError) as caught:
        parse_token_request(token_params(grant_type=[grant_type]))
    assert caught.value.error == "unsupported_grant_type"


def test_the_code_hash_never_fails_on_odd_input():
    assert len(hash_secret("\ud800\x00é")) == 64
    assert hash_secret("abc") != "abc"


# --- Apps that name themselves, device requests (RFC 8628) -------------------------------------------


def test_an_app_naming_itself_is_recorded_apart_from_the_website_of_that_name():
    assert self_named_client("github.com").recorded == "unverified:github.com"
    assert self_named_client("LocalHost").recorded == "localhost"
    assert client("github.com").recorded == "github.com"


@pytest.mark.parametrize("name", ["findall-cli", "My Tool 2.0", "outil-énorme", "x" * 100, "https://x.example/c"])
def test_any_short_printable_name_is_an_app_name(name):
    assert self_named_client(name).client_id == name


@pytest.mark.parametrize("name", [None, "", " a", "a ", "a\tb", "a\u202eb", "a\u2066b", "a\u200bb", "x" * 101])
def test_other_names_are_refused(name):
    with pytest.raises(OAuthError) as caught:
        self_named_client(name)
    assert caught.value.error == "invalid_request"


def test_a_device_request_names_its_client_scope_and_served_resources():
    parsed = parse_device_authorization_request(
        {"client_id": ["localhost"], "resource": ["http://localhost:1234", "https://api.example/"]},
        allowed_resources=["https://api.example"],
    )
    assert parsed.client.is_self_named and parsed.client.recorded == "localhost"
    assert parsed.scope == SCOPE_KEY_READ
    assert parsed.resources == ("https://api.example/",)


def test_user_codes_are_eight_letters_without_vowels_or_look_alikes():
    codes = {new_user_code() for _ in range(200)}
    assert len(codes) == 200
    assert all(len(code) == 8 and set(code) <= set("BCDFGHJKLMNPQRSTVWXZ") for code in codes)
    assert format_user_code("BCDFGHJK") == "BCDF-GHJK"


@pytest.mark.parametrize("typed", ["BCDF-GHJK", "bcdf-ghjk", "bcdfghjk", " BCDF GHJK ", "Bcdf-Ghjk"])
def test_a_typed_user_code_ignores_case_dashes_and_spaces(typed):
    assert normalize_user_code(typed) == "BCDFGHJK"


@pytest.mark.parametrize("typed", ["", "BCDF-GHJ", "BCDF-GHJKL", "ABCD-EFGH", "BCDF-GHJ1", "BCDF_GHJK"])
def test_anything_else_is_no_user_code(typed):
    assert normalize_user_code(typed) is None


def test_a_device_poll_is_its_own_token_request():
    parsed = parse_token_request(
        {"grant_type": ["urn:ietf:params:oauth:grant-type:device_code"], "device_code": ["d"], "client_id": ["c"]}
    )
    assert parsed == DeviceTokenRequest(device_code="d", client_id="c")


def test_an_unserved_resource_is_left_out():
    params = {"resource": ["http://localhost:5000", "https://api.example/v1"]}
    assert parse_resources(params, allowed=["https://api.example"]) == ("https://api.example/v1",)
