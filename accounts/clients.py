"""Client apps by name: what grants, keys and audit events record, and what people see.

An app's `client_id` is recorded in one form (its hostname in IDNA A-labels,
or the URL of its metadata document) and shown to people in another: the
Unicode hostname, with the A-label form beside it whenever the two differ,
so that look-alike hosts cannot pass for others (DESIGN.md, consent page).
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


@dataclass(frozen=True)
class ClientName:
    """One client as people see it, from what the records hold."""

    recorded: str  # the client as grants, keys and audit events record it
    host: str  # its hostname, IDNA A-labels
    display_host: str  # the same in Unicode
    document_url: str = ""  # set when the client is identified by a metadata document
    declared_name: str = ""  # the name a metadata document gives (unverified)

    @classmethod
    def of(cls, recorded: str, *, declared_name: str = "") -> "ClientName":
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
        """For lists and messages: "bücher.example (xn--bcher-kva.example)", or just the host."""
        return f"{self.display_host} ({self.host})" if self.is_idn else self.display_host

    @property
    def label(self) -> str:
        """What a key created for this app is called: the declared name beside the host, if any."""
        return f"{self.declared_name} ({self.display_host})" if self.declared_name else self.display_host


def display_name(recorded: str) -> str:
    """A recorded client for one line of text; "" for none (a key the user made)."""
    return ClientName.of(recorded).one_line if recorded else ""
