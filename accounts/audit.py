"""Recording audit events, with who did it and from where."""

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.http import HttpRequest
from django.utils import timezone

from accounts.models import AuditEvent, User
from accounts.rows import insert_sql, row_values


@dataclass(frozen=True)
class RequestContext:
    """Where a change came from: the part of an HTTP request the log keeps."""

    ip_address: str | None = None
    user_agent: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest) -> "RequestContext":
        # PostgreSQL refuses NUL in text columns; a header is client input.
        user_agent = request.headers.get("User-Agent", "").replace("\x00", "")[:300]
        return cls(ip_address=client_ip(request), user_agent=user_agent)


SYSTEM = RequestContext()


def client_ip(request: HttpRequest) -> str | None:
    """REMOTE_ADDR, or the entry a trusted proxy put in X-Forwarded-For; None when it is no address."""
    candidate = request.META.get("REMOTE_ADDR", "")
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies:
        forwarded = [p.strip() for p in request.headers.get("X-Forwarded-For", "").split(",") if p.strip()]
        if len(forwarded) >= proxies:
            candidate = forwarded[-proxies]
    address = parse_address(candidate)
    return str(address) if address is not None else None


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An IP address as proxies write it: with or without a port (`1.2.3.4:80`, `[::1]:80`) or a zone.

    An IPv4 address mapped into IPv6 (`::ffff:1.2.3.4`, what dual-stack
    sockets report) is the IPv4 address.
    """
    value = text.strip()
    if value.startswith("["):
        end = value.find("]")
        value = value[1:end] if end > 0 else ""
    elif value.count(":") == 1:  # IPv4 with a port; a bare IPv6 address has several colons
        value = value.split(":", 1)[0]
    value = value.split("%", 1)[0]  # an IPv6 zone (fe80::1%eth0) names an interface of the proxy, not the client
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
        return address.ipv4_mapped
    return address


def audit_record(
    *,
    kind: str,
    context: RequestContext,
    actor_kind: str = AuditEvent.Actor.USER,
    actor: User | None = None,
    subject: User | None = None,
    subject_id: int | None = None,
    client_id: str = "",
    key_prefix: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event. Call it inside the transaction of the change it records."""
    row = audit_row(
        kind=kind,
        context=context,
        actor_kind=actor_kind,
        actor_id=actor.pk if actor is not None else None,
        subject_id=subject.pk if subject is not None else subject_id,
        client_id=client_id,
        key_prefix=key_prefix,
        detail=detail,
    )
    with connection.cursor() as cursor:
        cursor.execute(insert_sql(AuditEvent, row), list(row.values()))


def write_with_event(sql: str, params: list, event: dict[str, Any]) -> int:
    """Run `sql`, an INSERT or UPDATE of at most one row, and append `event` (audit_row) if it wrote one.

    Returns the number of rows written. On PostgreSQL one statement (the write
    in a WITH, the event inserted from what it wrote): a round trip less on the
    token exchange and on every consent (docs/benchmarks.md). Elsewhere two
    statements in one transaction.
    """
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            quote = connection.ops.quote_name
            cursor.execute(
                f"WITH written AS ({sql} RETURNING 1)"
                f" INSERT INTO {quote(AuditEvent._meta.db_table)} ({', '.join(quote(column) for column in event)})"
                f" SELECT {', '.join(['%s'] * len(event))} FROM written",
                [*params, *event.values()],
            )
            return cursor.rowcount
        with transaction.atomic(savepoint=False):
            cursor.execute(sql, params)
            if cursor.rowcount != 1:
                return cursor.rowcount
            cursor.execute(insert_sql(AuditEvent, event), list(event.values()))
            return 1


def audit_row(
    *,
    kind: str,
    context: RequestContext,
    actor_kind: str = AuditEvent.Actor.USER,
    actor_id: int | None = None,
    subject_id: int | None = None,
    client_id: str = "",
    key_prefix: str = "",
    detail: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One event as columns and values ready for the database, each prepared by its model field.

    Events are appended with one plain INSERT (audit_record), or with the
    change they record (write_with_event).
    """
    values = {
        "created_at": timezone.now(),
        "kind": kind,
        "actor_kind": actor_kind,
        "actor": actor_id,
        "subject": subject_id,
        "client_id": client_id[:255],
        "key_prefix": key_prefix,
        "ip_address": context.ip_address,
        "user_agent": context.user_agent,
        "detail": detail or {},
    }
    return row_values(AuditEvent, values)
