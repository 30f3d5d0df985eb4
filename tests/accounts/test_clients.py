"""accounts.clients: what records hold of a client app, and how people see it."""

import pytest

from accounts.clients import ClientName, ascii_host, display_name, unicode_host


def test_a_hostname_is_shown_as_it_is_recorded():
    name = ClientName.of("yourapp.com")
    assert name.host == name.display_host == name.recorded == "yourapp.com"
    assert not name.is_idn
    assert name.one_line == "yourapp.com"


def test_an_idn_is_shown_in_unicode_with_its_punycode_beside_it():
    name = ClientName.of("xn--bcher-kva.example")
    assert name.display_host == "bücher.example"
    assert name.host == "xn--bcher-kva.example"
    assert name.is_idn
    assert name.one_line == "bücher.example (xn--bcher-kva.example)"


@pytest.mark.parametrize("recorded", ["localhost", "127.0.0.1", "[::1]"])
def test_loopback_hosts_are_marked(recorded):
    assert ClientName.of(recorded).is_loopback


def test_a_metadata_document_client_is_shown_by_its_host_and_names_its_document():
    url = "https://mcp.example.com/client.json"
    name = ClientName.of(url, declared_name="Example MCP")
    assert name.host == "mcp.example.com"
    assert name.document_url == url
    assert name.recorded == url
    assert name.label == "Example MCP (mcp.example.com)"


def test_a_key_for_a_host_is_named_after_the_host():
    assert ClientName.of("xn--bcher-kva.example").label == "bücher.example"


def test_no_recorded_client_has_no_display_name():
    assert display_name("") == ""


@pytest.mark.parametrize(
    "typed, stored",
    [("Bücher.Example", "xn--bcher-kva.example"), ("YOURAPP.COM", "yourapp.com"), ("faß.de", "xn--fa-hia.de")],
)
def test_hostnames_are_recorded_in_lower_case_a_labels_nontransitionally(typed, stored):
    assert ascii_host(typed) == stored


@pytest.mark.parametrize("typed", ["your_app.com", "a..b", "-a.com", "x" * 64 + ".com"])
def test_a_string_that_is_no_hostname_raises_value_error(typed):
    with pytest.raises(ValueError):
        ascii_host(typed)


def test_a_host_that_does_not_decode_is_shown_as_it_is():
    assert unicode_host("xn--zz.example") == "xn--zz.example"
