"""Resource servers and what they may learn about a key (RFC 7662).

Operators issue a resource server (an MCP server, a separate API) its
credentials in admin, naming the RFC 8707 resources it serves; it then asks
POST /getKeys/introspect whether a key is active. It learns about a key only
when one of the key's active grants names one of its resources: a key never
handed to it is `{"active": false}` to it, so its credentials cannot be used
to check keys meant for other servers. Only a hash of its secret is kept;
the key itself is never told.
"""

import secrets
from collections.abc import Sequence
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from accounts.audit import SYSTEM, RequestContext, audit_record
from accounts.models import ApiKey, AuditEvent, User
from oauthprovider.models import Grant, ResourceServer
from oauthprovider.protocol import SCOPE_KEY_READ, OAuthError, hash_secret, parse_resources

LAST_USED_RESOLUTION = timedelta(minutes=1)


def served_resources(urls: Sequence[str]) -> list[str]:
    """The resources a resource server may be given: configured ones (OAUTH_RESOURCES or below); ValueError if not."""
    urls = [url.strip() for url in urls if url.strip()]
    if not urls:
        raise ValueError("Name at least one resource URL the server serves (e.g. https://mcp.example.com/mcp).")
    rule = "Each must be OAUTH_ISSUER or one of OAUTH_EXTRA_RESOURCES (or a URL below one)."
    try:
        served = parse_resources({"resource": urls}, allowed=settings.OAUTH_RESOURCES)
    except OAuthError as exc:
        raise ValueError(f"{exc.description} {rule}") from None
    unserved = [url for url in dict.fromkeys(urls) if url not in served]
    if unserved:  # parse_resources leaves these out; a resource server must not name them
        raise ValueError(f"Not served by this provider: {', '.join(unserved)}. {rule}")
    return list(served)


def resource_server_create(
    *, name: str, resources: Sequence[str], context: RequestContext = SYSTEM, actor: User | None = None
) -> tuple[ResourceServer, str, str]:
    """Issue introspection credentials for a server of `resources`; the secret is returned once, only its hash kept."""
    resources = served_resources(resources)
    client_id = "rs_" + secrets.token_urlsafe(16)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        server = ResourceServer.objects.create(
            name=name, client_id=client_id, secret_hash=hash_secret(secret), resources=resources
        )
        audit_record(
            kind=AuditEvent.Kind.RESOURCE_SERVER_CREATED,
            context=context,
            actor_kind=AuditEvent.Actor.ADMIN if actor else AuditEvent.Actor.SYSTEM,
            actor=actor,
            detail={"name": name, "client_id": client_id, "resources": resources},
        )
    return server, client_id, secret


def resource_server_set_resources(
    *, server: ResourceServer, resources: Sequence[str], context: RequestContext, actor: User | None
) -> None:
    """Change which resources a server serves, i.e. which keys it may learn about (recorded in the audit log)."""
    resources = served_resources(resources)
    with transaction.atomic():
        before = ResourceServer.objects.select_for_update().values_list("resources", flat=True).get(pk=server.pk)
        server.resources = resources
        if before == resources:
            return
        ResourceServer.objects.filter(pk=server.pk).update(resources=resources)
        audit_record(
            kind=AuditEvent.Kind.RESOURCE_SERVER_CHANGED,
            context=context,
            actor_kind=AuditEvent.Actor.ADMIN if actor else AuditEvent.Actor.SYSTEM,
            actor=actor,
            detail={"name": server.name, "client_id": server.client_id, "before": before, "after": resources},
        )


def resource_server_revoke(*, server: ResourceServer, context: RequestContext, actor: User | None) -> bool:
    """Withdraw introspection credentials at once; False if they were already revoked."""
    with transaction.atomic():
        revoked = ResourceServer.objects.filter(pk=server.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
        if revoked:
            audit_record(
                kind=AuditEvent.Kind.RESOURCE_SERVER_REVOKED,
                context=context,
                actor_kind=AuditEvent.Actor.ADMIN if actor else AuditEvent.Actor.SYSTEM,
                actor=actor,
                detail={"name": server.name, "client_id": server.client_id},
            )
    return bool(revoked)


def resource_server_authenticate(*, client_id: str, secret: str) -> ResourceServer | None:
    """The active resource server these credentials belong to, compared in constant time."""
    server = ResourceServer.objects.filter(client_id=client_id[:64], revoked_at__isnull=True).first()
    if server is None or not secrets.compare_digest(server.secret_hash, hash_secret(secret)):
        return None
    now = timezone.now()
    if server.last_used_at is None or now - server.last_used_at > LAST_USED_RESOLUTION:
        ResourceServer.objects.filter(pk=server.pk).update(last_used_at=now)
    return server


def key_introspect(*, raw_key: str, server: ResourceServer, client_address: str | None = None) -> dict:
    """RFC 7662 section 2.2: what `server` may know about a key, never the key.

    Only keys handed to `server`: an active grant of the key's owner that
    names one of the server's resources and either holds this key or created
    it (a key created for an app belongs to that app's grant, as revocation
    treats it). Any other key, even an active one, is `{"active": false}`
    (RFC 7662 2.2 lets the server decide what each caller may learn). So is
    an expired key, and a key limited to some addresses unless the resource
    server says where its caller is (`client_address`) and that address is
    allowed (docs/decisions.md "Limits on keys").
    """
    key = ApiKey.objects.for_raw_key(raw_key)
    if key is None or key.refusal(address=client_address) is not None:
        return {"active": False}
    held = Q(key=key) | Q(client_id=key.created_for_client) if key.created_for_client else Q(key=key)
    grants = Grant.objects.filter(held, user_id=key.user_id, revoked_at__isnull=True)
    served = {
        client_id: [resource for resource in resources if server.serves(resource)]
        for client_id, resources in grants.values_list("client_id", "resources")
    }
    served = {client_id: resources for client_id, resources in served.items() if resources}
    if not served:
        return {"active": False}
    holder = key.created_for_client if key.created_for_client in served else sorted(served)[0]
    audience = sorted({resource for resources in served.values() for resource in resources})
    answer = {
        "active": True,
        "scope": SCOPE_KEY_READ,
        "token_type": "Bearer",
        "username": key.user.get_username(),
        "sub": str(key.user_id),
        "iat": int(key.created_at.timestamp()),
        "iss": settings.OAUTH_ISSUER,
    }
    if key.expires_at is not None:
        answer["exp"] = int(key.expires_at.timestamp())
    answer["client_id"] = holder
    # The resources of this server the user consented to hand this key to (RFC 7662 2.2, RFC 8707).
    answer["aud"] = audience
    return answer
