"""The limits on a key as pure rules (accounts.limits): expiry choices, address allowlists, which limit refuses."""

from datetime import UTC, date, datetime, timedelta

import pytest

from accounts import limits

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


# --- Expiry ---------------------------------------------------------------------------------


def test_the_expiry_choices_are_never_7_30_90_days_or_a_date():
    assert limits.expiry_choices(90) == [
        ("never", "Never"),
        ("7", "7 days"),
        ("30", "30 days"),
        ("90", "90 days"),
        ("date", "On a date…"),
    ]


def test_an_operator_default_that_is_not_standard_is_offered_too():
    assert ("60", "60 days") in limits.expiry_choices(60)
    assert limits.default_expiry_choice(60) == "60"
    assert limits.default_expiry_choice(0) == "never"


@pytest.mark.parametrize(("choice", "days"), [("7", 7), ("30", 30), ("90", 90)])
def test_a_number_of_days_counts_from_now(choice, days):
    assert limits.expires_at_for(choice, None, now=NOW) == NOW + timedelta(days=days)


def test_never_means_no_expiry():
    assert limits.expires_at_for("never", date(2030, 1, 1), now=NOW) is None


def test_a_date_means_the_key_stops_working_as_that_day_begins_in_utc():
    assert limits.expires_at_for("date", date(2026, 3, 2), now=NOW) == datetime(2026, 3, 2, tzinfo=UTC)


@pytest.mark.parametrize("day", [date(2026, 3, 1), date(2026, 2, 28), date(1, 1, 1)])
def test_a_date_that_is_today_or_past_is_refused(day):
    with pytest.raises(ValueError, match="future"):
        limits.expires_at_for("date", day, now=NOW)


def test_a_date_more_than_ten_years_ahead_is_refused():
    with pytest.raises(ValueError, match="ten years"):
        limits.expires_at_for("date", date(9999, 12, 31), now=NOW)


def test_a_date_choice_without_a_date_is_refused():
    with pytest.raises(ValueError, match="Choose the date"):
        limits.expires_at_for("date", None, now=NOW)


@pytest.mark.parametrize("choice", ["", "0", "-7", "7.5", "٧", "99999", "forever"])
def test_an_unknown_choice_is_refused(choice):
    with pytest.raises(ValueError):
        limits.expires_at_for(choice, None, now=NOW)


# --- Address allowlists ---------------------------------------------------------------------


def test_networks_are_normalised_and_deduplicated():
    text = "203.0.113.0/24, 2001:DB8:0:0::/32\n198.51.100.7 203.0.113.0/24; ::1"
    assert limits.parse_allowlist(text, max_entries=10) == (
        "203.0.113.0/24",
        "2001:db8::/32",
        "198.51.100.7/32",
        "::1/128",
    )


def test_an_empty_list_means_any_address():
    assert limits.parse_allowlist("  \n ", max_entries=10) == ()
    assert limits.address_allowed((), "203.0.113.7")
    assert limits.address_allowed([], None)


def test_host_bits_are_refused_with_the_network_it_probably_meant():
    with pytest.raises(ValueError) as refused:
        limits.parse_allowlist("192.168.1.5/24", max_entries=10)
    assert "host bits" in str(refused.value)
    assert "192.168.1.0/24" in str(refused.value) and "192.168.1.5" in str(refused.value)


@pytest.mark.parametrize(
    "entry",
    ["example.com", "300.1.1.1", "10.0.0.0/33", "1.2.3", "fe80::1%eth0", "١٠.0.0.1", "10.0.0.0/-1", "*", "::g"],
)
def test_anything_that_is_not_an_address_or_network_is_refused(entry):
    with pytest.raises(ValueError, match="not an IP address or network"):
        limits.parse_allowlist(entry, max_entries=10)


def test_more_networks_than_allowed_are_refused():
    text = ",".join(f"10.0.{i}.0/24" for i in range(33))
    with pytest.raises(ValueError, match="At most 32"):
        limits.parse_allowlist(text, max_entries=32)
    assert len(limits.parse_allowlist(",".join(f"10.0.{i}.0/24" for i in range(32)), max_entries=32)) == 32


def test_a_huge_text_is_refused_before_parsing():
    with pytest.raises(ValueError, match="too long"):
        limits.parse_allowlist("1" * (limits.MAX_ALLOWLIST_TEXT + 1), max_entries=10)


def test_an_address_is_allowed_only_inside_a_listed_network():
    allowed = ("203.0.113.0/24", "2001:db8::/32")
    assert limits.address_allowed(allowed, "203.0.113.200")
    assert limits.address_allowed(allowed, "2001:db8:1::5")
    assert not limits.address_allowed(allowed, "203.0.114.1")
    assert not limits.address_allowed(allowed, "2001:db9::1")


def test_an_ipv4_mapped_ipv6_address_counts_as_its_ipv4_address():
    assert limits.address_allowed(("203.0.113.0/24",), "::ffff:203.0.113.9")


def test_an_unknown_or_garbled_address_is_refused_by_a_list():
    assert not limits.address_allowed(("0.0.0.0/0",), None)
    assert not limits.address_allowed(("0.0.0.0/0",), "not an address")


# --- Which limit refuses ----------------------------------------------------------------------


def test_refusal_names_the_limit_that_refused():
    later, earlier = NOW + timedelta(seconds=1), NOW - timedelta(seconds=1)
    networks = ("203.0.113.0/24",)
    assert limits.refusal(expires_at=later, allowed_networks=networks, address="203.0.113.1", now=NOW) is None
    assert limits.refusal(expires_at=NOW, allowed_networks=(), address=None, now=NOW) == limits.EXPIRED
    assert limits.refusal(expires_at=earlier, allowed_networks=networks, address="1.1.1.1", now=NOW) == "expired"
    assert (
        limits.refusal(expires_at=None, allowed_networks=networks, address="1.1.1.1", now=NOW)
        == limits.ADDRESS_NOT_ALLOWED
    )
