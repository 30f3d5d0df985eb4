"""Writes of the OAuth flow: consent, codes, redemption, revocation.

Each function is one transaction and records its audit events inside it.
"""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import SYSTEM, RequestContext, audit_record
from accounts.keys import KeyDecryptionError
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import key_create, key_revoke
from oauthprovider.models import AuthorizationCode, Grant, ResourceServer
from oauthprovider.protocol import (
    SCOPE_KEY_READ,
    AuthorizationRequest,
    OAuthError,
    TokenRequest,
    hash_secret,
    pkce_verify,
)

NEW_KEY = "new"

logger = logging.getLogger(__name__)


class KeyChoiceError(Exception):
    """The key chosen on the consent page is not one of the user's active keys."""


def _chosen_key(*, user: User, key_choice: str) -> ApiKey:
    # ASCII digits only: str.isdigit() also accepts "²" (int() then raises) and "١" (int() reads 1).
    if not (key_choice.isascii() and key_choice.isdigit()) or len(key_choice) > 18:
        raise KeyChoiceError
    key = ApiKey.objects.active().select_for_update().filter(pk=int(key_choice), user=user).first()
    if key is None:
        raise KeyChoiceError
    return key


def consent_approve(*, user: User, auth_request: AuthorizationRequest, key_choice: str, context: RequestContext) -> str:
    """Record the user's Allow and issue a one-time code; returns the code.

    Raises KeyChoiceError (and writes nothing) if `key_choice` is neither
    NEW_KEY nor the id of one of the user's active keys.
    """
    client = auth_request.client
    now = timezone.now()
    with transaction.atomic():
        if key_choice == NEW_KEY:
            key, _ = key_create(user=user, name=client.label, context=context, created_for_client=client.grant_id)
            created = True
        else:
            key, created = _chosen_key(user=user, key_choice=key_choice), False
        grant, _ = Grant.objects.select_for_update().get_or_create(
            user=user, client_id=client.grant_id, defaults={"scope": auth_request.scope, "first_authorized_at": now}
        )
        grant.scope = auth_request.scope
        grant.resources = list(auth_request.resources)
        grant.client_name = client.name or ""
        grant.key = key
        grant.key_created_by_consent = created
        grant.last_authorized_at = now
        grant.revoked_at, grant.revoked_by, grant.revoked_by_user = None, "", None
        grant.save()
        audit_record(
            kind=AuditEvent.Kind.CONSENT_GRANTED,
            context=context,
            actor=user,
            subject=user,
            client_id=client.grant_id,
            key_prefix=key.prefix,
            detail={
                "scope": auth_request.scope,
                "new_key": created,
                "redirect_uri": auth_request.redirect_uri,
                "resources": list(auth_request.resources),
            },
        )
        code = secrets.token_urlsafe(32)  # 256 bits
        AuthorizationCode.objects.create(
            code_hash=hash_secret(code),
            user=user,
            grant=grant,
            key=key,
            key_created_by_consent=created,
            client_id=client.client_id,
            redirect_uri=auth_request.redirect_uri,
            scope=auth_request.scope,
            code_challenge=auth_request.code_challenge,
            resources=list(auth_request.resources),
            created_at=now,
            expires_at=now + timedelta(seconds=settings.OAUTH_CODE_TTL_SECONDS),
        )
        audit_record(
            kind=AuditEvent.Kind.CODE_ISSUED,
            context=context,
            actor=user,
            subject=user,
            client_id=client.grant_id,
            key_prefix=key.prefix,
        )
    return code


def consent_deny(*, user: User, auth_request: AuthorizationRequest, context: RequestContext) -> None:
    audit_record(
        kind=AuditEvent.Kind.CONSENT_DENIED,
        context=context,
        actor=user,
        subject=user,
        client_id=auth_request.client.grant_id,
    )


def _invalid_grant(description: str) -> OAuthError:
    return OAuthError("invalid_grant", description)


def code_redeem(*, token_request: TokenRequest, context: RequestContext) -> tuple[str, str]:
    """Exchange a code for the key it stands for (RFC 6749 4.1.3, RFC 7636 4.6).

    Returns (the key itself, scope). Three queries on success: read,
    conditional update, audit insert. A request that fails validation does
    not use the code up; a valid replay of a used code revokes what it
    granted (RFC 6749 10.5).
    """
    code = (
        AuthorizationCode.objects.select_related("key", "grant")
        .filter(code_hash=hash_secret(token_request.code))
        .first()
    )
    if code is None:
        raise _invalid_grant("The authorization code is unknown, expired or already used.")
    matches = (
        secrets.compare_digest(token_request.client_id.encode(), code.client_id.encode())
        and secrets.compare_digest(token_request.redirect_uri.encode(), code.redirect_uri.encode())
        and pkce_verify(token_request.code_verifier, code.code_challenge)
    )
    if code.redeemed_at is not None:
        if matches:
            replay_detected(code=code, context=context)
        raise _invalid_grant("The authorization code is unknown, expired or already used.")
    now = timezone.now()
    if code.is_expired(now):
        raise _invalid_grant("The authorization code is unknown, expired or already used.")
    if code.failed_attempts >= settings.OAUTH_CODE_MAX_FAILED_ATTEMPTS:
        raise _invalid_grant("Too many failed attempts for this code; start the authorization again.")
    if not matches:
        AuthorizationCode.objects.filter(pk=code.pk).update(failed_attempts=F("failed_attempts") + 1)
        raise _invalid_grant(
            "The code was issued to another client_id or redirect_uri, or the code_verifier does not match."
        )
    if not code.key.is_active or not code.grant.is_active:
        raise _invalid_grant("The key or grant behind this code has been revoked.")
    # RFC 8707 section 2.2: the token request may narrow, never widen, the resources.
    if code.resources and not set(token_request.resources) <= set(code.resources):
        raise OAuthError("invalid_target", "The resource differs from the one in the authorization request.")
    try:
        # Before the code is claimed: a key-encryption-key mistake must not burn it.
        raw_key = code.key.plaintext()
    except KeyDecryptionError:
        logger.error("key %s cannot be decrypted: check KEY_ENCRYPTION_KEYS", code.key.prefix)
        raise OAuthError(
            "server_error", "The key cannot be handed out right now; try again later.", status=500
        ) from None
    # savepoint=False: one transaction, and no SAVEPOINT round trips.
    with transaction.atomic(savepoint=False):
        won = AuthorizationCode.objects.filter(pk=code.pk, redeemed_at__isnull=True).update(redeemed_at=now)
        if won:
            audit_record(
                kind=AuditEvent.Kind.TOKEN_ISSUED,
                context=context,
                actor_kind=AuditEvent.Actor.CLIENT,
                subject_id=code.user_id,
                client_id=code.grant.client_id,
                key_prefix=code.key.prefix,
            )
    if not won:
        # Another request redeemed it first: indistinguishable from a replay.
        replay_detected(code=code, context=context)
        raise _invalid_grant("The authorization code is unknown, expired or already used.")
    return raw_key, code.scope


def replay_detected(*, code: AuthorizationCode, context: RequestContext) -> None:
    """A used code came back with the right client, redirect_uri and verifier."""
    with transaction.atomic():
        grant = Grant.objects.select_for_update().get(pk=code.grant_id)
        audit_record(
            kind=AuditEvent.Kind.CODE_REPLAY,
            context=context,
            actor_kind=AuditEvent.Actor.SYSTEM,
            subject_id=code.user_id,
            client_id=grant.client_id,
            key_prefix=code.key.prefix,
        )
        also_revoke = [code.key] if code.key_created_by_consent else []
        grant_revoke(
            grant=grant,
            by=Grant.RevokedBy.REPLAY,
            actor=None,
            context=context,
            also_revoke=also_revoke,
        )


def grant_revoke(
    *,
    grant: Grant,
    by: str,
    actor: User | None,
    context: RequestContext,
    revoke_key: bool = False,
    also_revoke: list[ApiKey] | None = None,
) -> list[ApiKey]:
    """Revoke a grant and the keys its consents created (DESIGN.md "Grants").

    A pre-existing key the user chose is revoked only with `revoke_key`:
    the app still holds it, and only the person revoking can say whether
    other uses of that key matter more. Returns the keys revoked now.
    """
    actor_kind = {
        Grant.RevokedBy.USER: AuditEvent.Actor.USER,
        Grant.RevokedBy.ADMIN: AuditEvent.Actor.ADMIN,
        Grant.RevokedBy.CLIENT: AuditEvent.Actor.CLIENT,
    }.get(by, AuditEvent.Actor.SYSTEM)
    now = timezone.now()
    with transaction.atomic():
        newly_revoked = Grant.objects.filter(pk=grant.pk, revoked_at__isnull=True).update(
            revoked_at=now, revoked_by=by, revoked_by_user=actor
        )
        if newly_revoked:
            grant.revoked_at, grant.revoked_by, grant.revoked_by_user = now, by, actor
        candidates = {
            k.pk: k for k in ApiKey.objects.active().filter(user_id=grant.user_id, created_for_client=grant.client_id)
        }
        for key in [grant.key] if (grant.key and revoke_key) else []:
            candidates[key.pk] = key
        for key in also_revoke or []:
            candidates[key.pk] = key
        revoked = [
            key
            for key in candidates.values()
            if key_revoke(
                key=key,
                context=context,
                actor_kind=actor_kind,
                actor=actor,
                reason=f"grant for {grant.client_id} revoked",
            )
        ]
        if newly_revoked or revoked:
            audit_record(
                kind=AuditEvent.Kind.GRANT_REVOKED,
                context=context,
                actor_kind=actor_kind,
                actor=actor,
                subject_id=grant.user_id,
                client_id=grant.client_id,
                key_prefix=grant.key.prefix if grant.key else "",
                detail={"by": by, "keys_revoked": [k.prefix for k in revoked]},
            )
    return revoked


def key_return(*, raw_key: str, client_grant_id: str | None, context: RequestContext) -> None:
    """RFC 7009: an app gives back the key it received.

    Revokes that app's grant (and the keys its consents created); a key the
    user chose from their own keys stays active, as when the user revokes
    the grant. Unknown keys and other apps' grants are left alone, silently.
    Without a client_id, a key created for an app identifies that app.
    """
    key = ApiKey.objects.for_raw_key(raw_key)
    if key is None:
        return
    client_grant_id = client_grant_id or key.created_for_client
    if not client_grant_id:
        return
    grant = Grant.objects.filter(user_id=key.user_id, client_id=client_grant_id, key=key).first()
    if grant is not None:
        grant_revoke(grant=grant, by=Grant.RevokedBy.CLIENT, actor=None, context=context)
    elif key.created_for_client == client_grant_id:
        key_revoke(key=key, context=context, actor_kind=AuditEvent.Actor.CLIENT, reason="returned by the app")


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
    server = ResourceServer.objects.filter(client_id=client_id[:64], revoked_at__isnull=True).first()
    if server is None or not secrets.compare_digest(server.secret_hash, hash_secret(secret)):
        return None
    now = timezone.now()
    if server.last_used_at is None or now - server.last_used_at > timedelta(minutes=1):
        ResourceServer.objects.filter(pk=server.pk).update(last_used_at=now)
    return server


def key_introspect(*, raw_key: str) -> dict:
    """RFC 7662 section 2.2: what a resource server may know about a key, never the key."""
    key = ApiKey.objects.for_raw_key(raw_key)
    if key is None:
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
    if holder:
        answer["client_id"] = holder
    if audience:
        # The resources the user consented to hand this key to (RFC 7662 2.2, RFC 8707).
        answer["aud"] = audience
    return answer
