"""What a client block names and covers, as pure rules (oauthprovider.protocol)."""

import pytest

from oauthprovider.protocol import (
    BLOCK_DOCUMENT,
    BLOCK_DOMAIN,
    BLOCK_HOST,
    BLOCK_NAME,
    block_candidates,
    block_covers,
    block_pattern,
)

DOC = "https://evil.example/oauth/client.json"


# --- What an operator may type ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "typed", "recorded"),
    [
        (BLOCK_HOST, " Evil.Example ", "evil.example"),
        (BLOCK_HOST, "bücher.example", "xn--bcher-kva.example"),
        (BLOCK_DOMAIN, "xn--bcher-kva.example", "xn--bcher-kva.example"),
        (BLOCK_DOCUMENT, DOC, DOC),
        (BLOCK_NAME, "findall-cli", "unverified:findall-cli"),
        (BLOCK_NAME, "github.com", "unverified:github.com"),
    ],
)
def test_a_pattern_is_recorded_the_way_grants_record_clients(kind, typed, recorded):
    assert block_pattern(kind, typed) == recorded


@pytest.mark.parametrize(
    ("kind", "typed", "message"),
    [
        (BLOCK_HOST, "https://evil.example/", "hostname alone"),
        (BLOCK_HOST, "localhost", "not a website"),
        (BLOCK_DOMAIN, "com", "Not a hostname"),
        (BLOCK_DOMAIN, "10.0.0.1", "Not a hostname"),
        (BLOCK_HOST, "evil..example", "Not a hostname"),
        (BLOCK_DOCUMENT, "http://evil.example/client.json", "metadata document URL"),
        (BLOCK_DOCUMENT, "https://evil.example/", "metadata document URL"),
        (BLOCK_DOCUMENT, "evil.example", "metadata document URL"),
        (BLOCK_NAME, "localhost", "loopback name"),
        (BLOCK_NAME, "127.0.0.1", "loopback name"),
        (BLOCK_NAME, "x" * 101, "printable characters"),
        (BLOCK_NAME, "bad\u202ename", "printable characters"),
        ("everything", "evil.example", "Choose what kind"),
    ],
)
def test_a_pattern_that_names_no_client_is_refused_with_a_sentence(kind, typed, message):
    with pytest.raises(ValueError, match=message):
        block_pattern(kind, typed)


# --- What a block covers ------------------------------------------------------------------------


def test_a_host_block_covers_that_website_and_documents_on_that_host_only():
    assert block_covers(BLOCK_HOST, "evil.example", "evil.example")
    assert block_covers(BLOCK_HOST, "evil.example", DOC)
    assert not block_covers(BLOCK_HOST, "evil.example", "app.evil.example")
    assert not block_covers(BLOCK_HOST, "evil.example", "https://app.evil.example/client.json")
    assert not block_covers(BLOCK_HOST, "evil.example", "notevil.example")


def test_a_domain_block_covers_the_domain_its_subdomains_and_their_documents():
    for recorded in ("evil.example", "a.evil.example", "a.b.evil.example", DOC, "https://x.evil.example/c.json"):
        assert block_covers(BLOCK_DOMAIN, "evil.example", recorded), recorded
    for recorded in ("notevil.example", "evil.example.org", "https://notevil.example/c.json", "example"):
        assert not block_covers(BLOCK_DOMAIN, "evil.example", recorded), recorded


def test_a_document_block_covers_that_document_exactly():
    assert block_covers(BLOCK_DOCUMENT, DOC, DOC)
    assert not block_covers(BLOCK_DOCUMENT, DOC, "evil.example")
    assert not block_covers(BLOCK_DOCUMENT, DOC, DOC + "?v=2")


def test_a_website_block_never_covers_an_app_that_calls_itself_so_and_vice_versa():
    assert not block_covers(BLOCK_HOST, "github.com", "unverified:github.com")
    assert not block_covers(BLOCK_DOMAIN, "github.com", "unverified:github.com")
    assert not block_covers(BLOCK_NAME, "unverified:github.com", "github.com")
    assert block_covers(BLOCK_NAME, "unverified:github.com", "unverified:github.com")


def test_nothing_covers_the_loopback_names():
    assert block_candidates("localhost") == []
    assert block_candidates("127.0.0.1") == []


def test_the_candidates_are_few_so_the_lookup_is_one_indexed_query():
    assert block_candidates("a.b.evil.example") == [
        (BLOCK_HOST, "a.b.evil.example"),
        (BLOCK_DOMAIN, "a.b.evil.example"),
        (BLOCK_DOMAIN, "b.evil.example"),
        (BLOCK_DOMAIN, "evil.example"),
    ]
