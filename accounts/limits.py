"""Limits a person puts on a key: when it expires, and from which addresses it works.

Pure rules (no database, no HTTP), shared by the keys page, the consent page
and every place a key is checked (/v1/me, the token endpoint, the device
flow, introspection). The limits live on the key's own row (`expires_at`,
`allowed_networks`), so checking them costs no query beyond the key lookup.
"""

import functools
import ipaddress
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

# Expiry choices offered on the keys and consent pages ("date": the date field says when).
NEVER = "never"
ON_DATE = "date"
STANDARD_DAYS = (7, 30, 90)
# A chosen date may lie at most this far ahead (choose "never" for no expiry).
MAX_DATE_AHEAD = timedelta(days=3660)
# The allowlist as typed: separated by commas, spaces or new lines.
_SEPARATORS = re.compile(r"[\s,;]+")
MAX_ALLOWLIST_TEXT = 4000

# Which limit refused a key (what /v1/me says; never the key, never the list).
EXPIRED = "expired"
ADDRESS_NOT_ALLOWED = "address_not_allowed"


@dataclass(frozen=True)
class KeyLimits:
    """What a person chose for a new key, or for one of their keys later."""

    expires_at: datetime | None = None
    allowed_networks: tuple[str, ...] = ()

    @property
    def as_detail(self) -> dict:
        """For audit events: plain JSON."""
        return {
            "expires_at": self.expires_at.isoformat() if self.expires_at else None,
            "allowed_networks": list(self.allowed_networks),
        }


NO_LIMITS = KeyLimits()


def expiry_choices(default_days: int) -> list[tuple[str, str]]:
    """Never, 7, 30 or 90 days (plus the operator's default when it is another number), or a date."""
    days = sorted({*STANDARD_DAYS, *([default_days] if default_days > 0 else [])})
    return [(NEVER, "Never"), *((str(d), f"{d} days") for d in days), (ON_DATE, "On a date…")]


def default_expiry_choice(default_days: int) -> str:
    return str(default_days) if default_days > 0 else NEVER


def expires_at_for(choice: str, on_date: date | None, *, now: datetime) -> datetime | None:
    """The moment a key chosen now expires; ValueError with a sentence for people when the choice is unusable.

    A date means the key stops working as that day begins (00:00 UTC): it is
    shown with the time, so nobody has to guess which end of the day counts.
    """
    if choice == NEVER:
        return None
    if choice == ON_DATE:
        if on_date is None:
            raise ValueError("Choose the date on which the key expires.")
        moment = datetime.combine(on_date, time.min, tzinfo=UTC)
        if moment <= now:
            raise ValueError("The expiry date must be in the future (the key expires as that day begins, UTC).")
        if moment - now > MAX_DATE_AHEAD:
            raise ValueError("The expiry date may be at most ten years ahead; choose “Never” for no expiry.")
        return moment
    if choice.isascii() and choice.isdigit() and 0 < int(choice) <= MAX_DATE_AHEAD.days:
        return now + timedelta(days=int(choice))
    raise ValueError("Choose when the key expires.")


def parse_allowlist(text: str, *, max_entries: int) -> tuple[str, ...]:
    """The networks typed by a person, normalised (`10.0.0.0/8`, `2001:db8::/32`); ValueError with a sentence.

    A bare address is that one address (/32 or /128). An entry with host
    bits set (`192.168.1.5/24`) is refused rather than silently widened or
    narrowed: the message names the network it probably meant. Duplicates
    are dropped; more than `max_entries` is refused.
    """
    if len(text) > MAX_ALLOWLIST_TEXT:
        raise ValueError("The address list is too long.")
    entries = [e for e in _SEPARATORS.split(text.strip()) if e]
    networks: list[str] = []
    for entry in entries:
        network = _parse_network(entry)
        if network not in networks:
            networks.append(network)
    if len(networks) > max_entries:
        raise ValueError(f"At most {max_entries} addresses or networks; this list has {len(networks)}.")
    return tuple(networks)


def _parse_network(entry: str) -> str:
    shown = entry if len(entry) <= 60 and entry.isprintable() else "an entry"
    if not entry.isascii() or "%" in entry:  # no Unicode digits, no IPv6 zone ids
        raise ValueError(f"“{shown}” is not an IP address or network (CIDR) such as 203.0.113.0/24.")
    try:
        return str(ipaddress.ip_network(entry, strict=True))
    except ValueError:
        pass
    try:
        loose = ipaddress.ip_network(entry, strict=False)
    except ValueError:
        raise ValueError(f"“{shown}” is not an IP address or network (CIDR) such as 203.0.113.0/24.") from None
    raise ValueError(
        f"“{shown}” has host bits set: did you mean {loose} (the whole network) or "
        f"{entry.split('/', 1)[0]} (that one address)?"
    )


@functools.lru_cache(maxsize=1024)
def _networks(allowed: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(n) for n in allowed)


def address_allowed(allowed: tuple[str, ...] | list[str], address: str | None) -> bool:
    """Whether `address` lies in one of the networks; an empty list allows every address.

    An unknown address (None) is refused by a non-empty list: the check fails
    closed. An IPv4-mapped IPv6 address (`::ffff:203.0.113.7`) counts as its
    IPv4 address.
    """
    if not allowed:
        return True
    if address is None:
        return False
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return any(ip in network for network in _networks(tuple(allowed)))


def refusal(*, expires_at: datetime | None, allowed_networks, address: str | None, now: datetime) -> str | None:
    """Which limit refuses a use of a key now from `address`: EXPIRED, ADDRESS_NOT_ALLOWED, or None."""
    if expires_at is not None and now >= expires_at:
        return EXPIRED
    if not address_allowed(allowed_networks, address):
        return ADDRESS_NOT_ALLOWED
    return None
