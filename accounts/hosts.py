"""Client hostnames for people: IDN in Unicode, with the stored A-label form beside it.

Grants, keys and audit events record a client as its hostname in IDNA
A-labels, or as the URL of its metadata document. Pages show the Unicode
form, and the punycode beside it whenever the two differ, so look-alike
hosts cannot pass for others (DESIGN.md, consent page).
"""

from urllib.parse import urlsplit

import idna


def client_host(client_id: str) -> str:
    """The hostname of a client_id: itself, or the host of a metadata document URL."""
    if client_id.startswith(("https://", "http://")):
        return urlsplit(client_id).hostname or client_id
    return client_id


def unicode_host(host: str) -> str:
    """A-labels to Unicode; anything that does not decode is shown as it is."""
    try:
        return idna.decode(host)
    except (idna.IDNAError, UnicodeError, ValueError):
        return host


def client_display(client_id: str) -> str:
    """A client_id for people: its host, in Unicode."""
    return unicode_host(client_host(client_id))


def host_display(client_id: str) -> str:
    """One line for lists: "bücher.example (xn--bcher-kva.example)", or just the host."""
    if not client_id:
        return ""
    host = client_host(client_id)
    unicode = unicode_host(host)
    return host if unicode == host else f"{unicode} ({host})"
