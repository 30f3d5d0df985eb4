"""Resource servers and what they may learn about a key (RFC 7662).

Operators issue a resource server (an MCP server, a separate API) its
credentials in admin; it then asks POST /getKeys/introspect whether a key is
active. Only a hash of its secret is kept; the key itself is never told.
"""

import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from accounts.audit import SYSTEM, RequestContext, audit_record
from accounts.models import ApiKey, AuditEvent, User
from oauthprovider.models import Grant, ResourceServer
from oauthprovider.protocol import SCOPE_KEY_READ, hash_secret

LAST_USED_RESOLUTION = timedelta(minutes=1)


def resource_server_create(
    *, name: str, context: RequestContext = SYSTEM, actor: User | None = None
) -> tuple[ResourceServer, str, str]:
    """Issue introspection credentials; the secret is returned once, only its hash is kept."""
    client_id = "rs_" + secrets.token_urlsafe(16)
    secret = secrets.token_urlsafe(32)
    with transaction.atomic():
        server = ResourceServer.objects.create(name=name, client_id=client_id, secret_hash=hash_secret(secret))
        audit_record(
            kind=AuditEvent.Kind.RESOURCE_SERVER_CREATED,
            context=context,
            actor_kind=AuditEvent.Actor.ADMIN if actor else AuditEvent.Actor.SYSTEM,
            actor=actor,
            detail={"name": name, "client_id": client_id},
        )
    return server, client_id, secret


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


def key_introspect(*, raw_key: str, client_address: str | None = None) -> dict:
    """RFC 7662 section 2.2: what a resource server may know about a key, never the key.

    An expired key is inactive; so is a key limited to some addresses unless
    the resource server says where its caller is (`client_address`) and that
    address is allowed (docs/decisions.md "Limits on keys").
    """
    key = ApiKey.objects.for_raw_key(raw_key)
    if key is None or key.refusal(address=client_address) is not None:
        return {"active": False}
    grants = list(Grant.objects.filter(key=key, revoked_at__isnull=True).values_list("client_id", "resources"))
    holder = key.created_for_client or (grants[0][0] if grants else None)
    audience = sorted({resource for _, resources in grants for resource in resources})
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
    if holder:
        answer["client_id"] = holder
    if audience:
        # The resources the user consented to hand this key to (RFC 7662 2.2, RFC 8707).
        answer["aud"] = audience
    return answer
