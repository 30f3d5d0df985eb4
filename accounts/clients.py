"""Client apps by name: what grants, keys and audit events record, and what people see.

An app's `client_id` is recorded in one form and shown to people in another:

- a website: its hostname in IDNA A-labels, shown in Unicode with the
  A-label form beside it whenever the two differ, so that look-alike hosts
  cannot pass for others (DESIGN.md, consent page);
- an app known by its metadata document: the document's URL, shown by host;
- an app that names itself (a native app with a loopback redirect, a device
  in the device flow): nothing verifies the name, so it is recorded with a
  mark (`unverified:findall-cli`) that keeps it apart from the website of
  the same name, and shown as the name the app gave, never as a website.
  A loopback hostname (`localhost`) names no website and is kept as it is.

Everything that turns one into the other is here, with one set of IDNA
rules. Pure functions: no database, no HTTP.

Lives in accounts because keys record the app they were created for and
accounts knows nothing of oauthprovider; oauthprovider uses it too.
"""

import unicodedata
from dataclasses import dataclass
from urllib.parse import urlsplit

import idna

LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
SELF_NAMED_MARK = "unverified:"
_URL_SCHEMES = ("https://", "http://")


def ascii_host(text: str) -> str:
    """A hostname in IDNA 2008 A-labels after UTS #46 mapping, lower-case; ValueError if it is none."""
    try:
        return idna.encode(text, uts46=True, std3_rules=True, transitional=False).decode("ascii").lower()
    except (idna.IDNAError, UnicodeError) as exc:
        raise ValueError(f"not a valid hostname: {exc}") from None


def unicode_host(host: str) -> str:
    """A-labels to Unicode; anything that does not decode is shown as it is."""
    try:
        return idna.decode(host)
    except (idna.IDNAError, UnicodeError, ValueError):
        return host


def without_format_characters(text: str) -> str:
    """`text` without Unicode format characters (category Cf: bidirectional overrides and isolates, zero-width ones).

    A name an app gives itself is shown inside our sentences; U+202E and
    friends would reorder the text around it.
    """
    return "".join(c for c in text if unicodedata.category(c) != "Cf")


def is_document_url(client_id: str) -> bool:
    """A client_id that names a client metadata document rather than a host."""
    return client_id.startswith(_URL_SCHEMES)


def self_named_record(name: str) -> str:
    """What grants record for an app that names itself (see above)."""
    lowered = name.lower()
    return lowered if lowered in LOOPBACK_HOSTS else SELF_NAMED_MARK + name


def _is_self_named(recorded: str) -> bool:
    return recorded.startswith(SELF_NAMED_MARK) or recorded in LOOPBACK_HOSTS


@dataclass(frozen=True)
class ClientName:
    """One client as people see it, from what the records hold."""

    recorded: str  # the client as grants, keys and audit events record it
    host: str  # its hostname, IDNA A-labels
    display_host: str  # the same in Unicode
    document_url: str = ""  # set when the client is identified by a metadata document
    declared_name: str = ""  # the name a metadata document gives (unverified)
    is_self_named: bool = False  # the app named itself: `host` is that name, verified by nothing

    @classmethod
    def of(cls, recorded: str, *, declared_name: str = "") -> "ClientName":
        if _is_self_named(recorded):
            name = recorded.removeprefix(SELF_NAMED_MARK)
            return cls(recorded=recorded, host=name, display_host=name, is_self_named=True)
        host = (urlsplit(recorded).hostname or recorded) if is_document_url(recorded) else recorded
        return cls(
            recorded=recorded,
            host=host,
            display_host=unicode_host(host),
            document_url=recorded if is_document_url(recorded) else "",
            declared_name=without_format_characters(declared_name),
        )

    @property
    def is_idn(self) -> bool:
        return self.display_host != self.host

    @property
    def is_loopback(self) -> bool:
        return self.host in LOOPBACK_HOSTS

    @property
    def one_line(self) -> str:
        """For lists: "bücher.example (xn--bcher-kva.example)", "findall-cli (name not verified)", a host."""
        if self.is_self_named and not self.is_loopback:
            return f"{self.display_host} (name not verified)"
        return f"{self.display_host} ({self.host})" if self.is_idn else self.display_host

    @property
    def label(self) -> str:
        """What a key created for this app is called: the declared name beside the host, if any."""
        return f"{self.declared_name} ({self.display_host})" if self.declared_name else self.display_host


def display_name(recorded: str) -> str:
    """A recorded client for one line of text; "" for none (a key the user made)."""
    return ClientName.of(recorded).one_line if recorded else ""
