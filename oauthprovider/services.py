"""Writes of the OAuth flow: consent, codes, redemption, revocation.

Each function is one transaction and records its audit events inside it.
"""

import logging
import secrets
from datetime import timedelta

from django.conf import settings
from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import RequestContext, audit_record, audit_row, write_with_event
from accounts.clients import ClientName
from accounts.keys import KeyDecryptionError, decrypt_key
from accounts.limits import NO_LIMITS, KeyLimits
from accounts.models import ApiKey, AuditEvent, Notification, User
from accounts.notifications import link, notification_queue
from accounts.rows import insert_statement, update_statement
from accounts.services import key_create, key_revoke
from oauthprovider.models import AuthorizationCode, ClientBlock, Grant
from oauthprovider.protocol import AuthorizationRequest, Client, OAuthError, TokenRequest, hash_secret, pkce_verify

logger = logging.getLogger(__name__)

# Services nest (a consent is a grant, maybe a key, and a code): their inner
# blocks use atomic(savepoint=False), one transaction without SAVEPOINT round
# trips; any error rolls the whole consent back. A caller that catches a
# service's error and goes on in the same transaction wraps the call in its
# own atomic() (a savepoint).

# Who revoked a grant, as the audit log names the actor.
_ACTOR_OF = {
    Grant.RevokedBy.USER: AuditEvent.Actor.USER,
    Grant.RevokedBy.ADMIN: AuditEvent.Actor.ADMIN,
    Grant.RevokedBy.CLIENT: AuditEvent.Actor.CLIENT,
    Grant.RevokedBy.REPLAY: AuditEvent.Actor.SYSTEM,
}


# --- Blocked clients ---------------------------------------------------------------------------

# PostgreSQL advisory lock that orders consents against blocks (see consents_lock).
_CONSENTS_LOCK = 0x4B47424C


class ClientBlocked(OAuthError):
    """The client is blocked by an operator (oauthprovider.blocks): no consent, no key."""

    def __init__(self, block: ClientBlock) -> None:
        super().__init__("unauthorized_client", "The operators of this service blocked this app.", status=403)
        self.block = block


def consents_lock(*, exclusive: bool) -> None:
    """Order consents against blocks, so that no grant slips between a block and its sweep.

    Consents take the lock shared (they run side by side) before they look
    for a block; creating a block takes it exclusively, so it waits for
    every consent already past that check to commit, and consents that come
    later wait for the block to commit and then see it. The sweep starts
    after the block committed, so it sees every grant a consent could have
    made without seeing the block. Held until the transaction ends.

    On PostgreSQL an advisory transaction lock. SQLite runs write
    transactions one at a time (IMMEDIATE, config/settings.py), which gives
    the same order with nothing to do here.
    """
    if connection.vendor == "postgresql":
        function = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {function}(%s)", [_CONSENTS_LOCK])


def client_block_of(client: Client) -> ClientBlock | None:
    """The active block covering this client, if any (one indexed query)."""
    return ClientBlock.objects.covering(client.recorded)


# --- Consent ---------------------------------------------------------------------------------


def consent_approve(
    *,
    user: User,
    auth_request: AuthorizationRequest,
    key: ApiKey | None,
    context: RequestContext,
    limits: KeyLimits = NO_LIMITS,
) -> str:
    """The user's Allow: the key (a new one for the app when `key` is None), the grant, a one-time code.

    `key` must be one of the user's active keys (the consent form checks it);
    `limits` are those the person chose for a new key. Raises ClientBlocked.
    """
    with transaction.atomic(savepoint=False):
        grant = grant_authorize(
            user=user,
            client=auth_request.client,
            scope=auth_request.scope,
            resources=auth_request.resources,
            key=key,
            context=context,
            detail={"redirect_uri": auth_request.redirect_uri},
            limits=limits,
        )
        return code_issue(grant=grant, auth_request=auth_request, context=context)


def consent_deny(*, user: User, client: Client, context: RequestContext) -> None:
    audit_record(
        kind=AuditEvent.Kind.CONSENT_DENIED, context=context, actor=user, subject=user, client_id=client.recorded
    )


def grant_authorize(
    *,
    user: User,
    client: Client,
    scope: str,
    resources: tuple[str, ...],
    key: ApiKey | None,
    context: RequestContext,
    detail: dict,
    limits: KeyLimits = NO_LIMITS,
) -> Grant:
    """Record a consent: the user's one grant for this client (DESIGN.md "Grants"), created or renewed.

    `key` is the user's active key they chose, or None for a new key created
    for the app with `limits`. `detail` goes into the audit event (how the
    app gets the key). A blocked client is refused (ClientBlocked) inside
    the transaction, after `consents_lock`. When the app gains access it did
    not have (a first key, a new key, another key, access again after a
    revocation), the person is told by mail.
    """
    now = timezone.now()
    with transaction.atomic(savepoint=False):
        consents_lock(exclusive=False)
        block = client_block_of(client)
        if block is not None:
            raise ClientBlocked(block)
        key_is_new = key is None
        if key is None:
            name = ClientName.of(client.recorded, declared_name=client.name).label
            key, _ = key_create(
                user=user, name=name, context=context, created_for_client=client.recorded, limits=limits
            )
        grant = Grant.objects.for_consent(user=user, client_id=client.recorded, first_authorized_at=now)
        had_this_key = grant.is_active and grant.key_id == key.pk
        grant.authorize(
            scope=scope, resources=resources, client_name=client.name, key=key, key_is_new=key_is_new, at=now
        )
        granted = audit_row(
            kind=AuditEvent.Kind.CONSENT_GRANTED,
            context=context,
            actor_id=user.pk,
            subject_id=user.pk,
            client_id=client.recorded,
            key_prefix=key.prefix,
            detail={"scope": scope, "new_key": key_is_new, "resources": list(resources), **detail},
        )
        write_with_event(*update_statement(grant, Grant.AUTHORIZED_FIELDS), granted)
        if not had_this_key:
            _notify_app_got_key(user=user, grant=grant, key=key, key_is_new=key_is_new, context=context, detail=detail)
    return grant


def _notify_app_got_key(
    *, user: User, grant: Grant, key: ApiKey, key_is_new: bool, context: RequestContext, detail: dict
) -> None:
    notification_queue(
        user=user,
        kind=Notification.Kind.APP_GOT_KEY,
        template="oauthprovider/email/app_got_key",
        context={
            "app": ClientName.of(grant.client_id, declared_name=grant.client_name),
            "key": key,
            "key_is_new": key_is_new,
            "device": detail.get("flow") == "device",
            "at": grant.last_authorized_at,
            "ip_address": context.ip_address,
            "apps_url": link("oauth:apps"),
            "keys_url": link("accounts:keys"),
            "activity_url": link("accounts:activity"),
        },
    )


# --- Codes -----------------------------------------------------------------------------------


def code_issue(*, grant: Grant, auth_request: AuthorizationRequest, context: RequestContext) -> str:
    """A one-time code for this consent (RFC 6749 4.1.2): 256 random bits, only the hash is stored."""
    code = secrets.token_urlsafe(32)
    now = timezone.now()
    issued = audit_row(
        kind=AuditEvent.Kind.CODE_ISSUED,
        context=context,
        actor_id=grant.user_id,
        subject_id=grant.user_id,
        client_id=grant.client_id,
        key_prefix=grant.key.prefix,
    )
    write_with_event(
        *insert_statement(
            AuthorizationCode,
            {
                "code_hash": hash_secret(code),
                "user": grant.user_id,
                "grant": grant.pk,
                "key": grant.key_id,
                "key_created_by_consent": grant.key_created_by_consent,
                "client_id": auth_request.client.client_id,
                "redirect_uri": auth_request.redirect_uri,
                "scope": auth_request.scope,
                "code_challenge": auth_request.code_challenge,
                "resources": list(auth_request.resources),
                "created_at": now,
                "expires_at": now + timedelta(seconds=settings.OAUTH_CODE_TTL_SECONDS),
                "failed_attempts": 0,
            },
        ),
        issued,
    )
    return code


_UNUSABLE_CODE = "The authorization code is unknown, expired or already used."


def code_redeem(*, token_request: TokenRequest, context: RequestContext) -> tuple[str, str]:
    """Exchange a code for the key it stands for (RFC 6749 4.1.3, RFC 7636 4.6); returns (key, scope).

    Two statements on success: the read, and the claim with its audit event
    (one statement on PostgreSQL). A request that fails validation does not
    use the code up; a valid replay of a used code revokes what it granted
    (RFC 6749 10.5).
    """
    now = timezone.now()
    code = AuthorizationCode.objects.for_redemption(hash_secret(token_request.code), now=now)
    if code is None:
        raise OAuthError("invalid_grant", _UNUSABLE_CODE)
    matches = _code_matches(code, token_request)
    if code.redeemed_at is not None:
        if matches:
            code_replay_revoke(code=code, context=context)
        raise OAuthError("invalid_grant", _UNUSABLE_CODE)
    _check_redeemable(code, token_request, matches=matches, now=now)
    # Before the code is claimed: a decryption failure must not burn it.
    raw_key = key_plaintext(ciphertext=code.key_ciphertext, prefix=code.key_prefix)
    event = audit_row(
        kind=AuditEvent.Kind.TOKEN_ISSUED,
        context=context,
        actor_kind=AuditEvent.Actor.CLIENT,
        subject_id=code.user_id,
        client_id=code.grant_client_id,
        key_prefix=code.key_prefix,
    )
    if not AuthorizationCode.objects.claim(code, now=now, event=event):
        # Another request redeemed it first: indistinguishable from a replay.
        code_replay_revoke(code=code, context=context)
        raise OAuthError("invalid_grant", _UNUSABLE_CODE)
    return raw_key, code.scope


def _code_matches(code: AuthorizationCode, token_request: TokenRequest) -> bool:
    """Same client_id and redirect_uri as the authorization request, and the right verifier."""
    return (
        secrets.compare_digest(token_request.client_id.encode(), code.client_id.encode())
        and secrets.compare_digest(token_request.redirect_uri.encode(), code.redirect_uri.encode())
        and pkce_verify(token_request.code_verifier, code.code_challenge)
    )


def _check_redeemable(code: AuthorizationCode, token_request: TokenRequest, *, matches: bool, now) -> None:
    """`code` as AuthorizationCode.objects.for_redemption reads it."""
    if code.is_expired(now):
        raise OAuthError("invalid_grant", _UNUSABLE_CODE)
    if not matches:
        # Counted (admin shows it), never held against the code: failures by
        # anyone else must not make it unusable for its holder (DESIGN.md).
        AuthorizationCode.objects.filter(pk=code.pk).update(failed_attempts=F("failed_attempts") + 1)
        raise OAuthError(
            "invalid_grant",
            "The code was issued to another client_id or redirect_uri, or the code_verifier does not match.",
        )
    if not code.key_active or not code.grant_active:
        raise OAuthError("invalid_grant", "The key or grant behind this code has been revoked.")
    if not code.key_unexpired:
        raise OAuthError("invalid_grant", "The key behind this code has expired.")
    # RFC 8707 section 2.2: the token request may narrow, never widen, the resources.
    if code.resources and not set(token_request.resources) <= set(code.resources):
        raise OAuthError("invalid_target", "The resource differs from the one in the authorization request.")


def key_plaintext(*, ciphertext: str, prefix: str) -> str:
    """The key to hand out; server_error (not a burnt code) when no key-encryption key fits."""
    try:
        return decrypt_key(ciphertext)
    except KeyDecryptionError:
        logger.error("key %s cannot be decrypted: check KEY_ENCRYPTION_KEYS", prefix)
        raise OAuthError(
            "server_error", "The key cannot be handed out right now; try again later.", status=500
        ) from None


def code_replay_revoke(*, code: AuthorizationCode, context: RequestContext) -> None:
    """A used code came back with the right client, redirect_uri and verifier: revoke what it granted.

    RFC 6749 10.5: the grant, and the key its consent created (a key the
    user chose stays, as when the user revokes the grant).
    """
    with transaction.atomic():
        grant = Grant.objects.select_for_update().get(pk=code.grant_id)
        audit_record(
            kind=AuditEvent.Kind.CODE_REPLAY,
            context=context,
            actor_kind=AuditEvent.Actor.SYSTEM,
            subject_id=code.user_id,
            client_id=grant.client_id,
            key_prefix=ApiKey.objects.filter(pk=code.key_id).values_list("prefix", flat=True).first() or "",
        )
        grant_revoke(grant=grant, by=Grant.RevokedBy.REPLAY, context=context)


# --- Revocation ------------------------------------------------------------------------------


# Revocations people are told about: those they did not make themselves.
_NOTIFIED_REVOCATIONS = (Grant.RevokedBy.ADMIN, Grant.RevokedBy.REPLAY)


def grant_revoke(
    *,
    grant: Grant,
    by: str,
    context: RequestContext,
    actor: User | None = None,
    revoke_key: bool = False,
    reason: str = "",
) -> list[ApiKey]:
    """Revoke a grant and the keys its consents created (DESIGN.md "Grants"); returns the keys revoked now.

    A pre-existing key the user chose is revoked only with `revoke_key`:
    the app still holds it, and only the person revoking can say whether
    other uses of that key matter more. Revoked by an operator or after a
    code replay, the person is told by mail (with `reason`, when given).
    """
    with transaction.atomic():
        newly_revoked = grant.revoke(by=by, by_user=actor, at=timezone.now())
        keys = ApiKey.objects.active().filter(user_id=grant.user_id, created_for_client=grant.client_id)
        if revoke_key and grant.key is not None:
            keys = keys | ApiKey.objects.active().filter(pk=grant.key_id)
        key_reason = f"grant for {grant.client_id} revoked"
        revoked = [
            key
            for key in keys
            if key_revoke(key=key, context=context, actor_kind=_ACTOR_OF[by], actor=actor, reason=key_reason)
        ]
        if newly_revoked or revoked:
            audit_record(
                kind=AuditEvent.Kind.GRANT_REVOKED,
                context=context,
                actor_kind=_ACTOR_OF[by],
                actor=actor,
                subject_id=grant.user_id,
                client_id=grant.client_id,
                key_prefix=grant.key.prefix if grant.key else "",
                detail={
                    "by": by,
                    "keys_revoked": [k.prefix for k in revoked],
                    **({"reason": reason} if reason else {}),
                },
            )
            if by in _NOTIFIED_REVOCATIONS:
                _notify_access_revoked(grant=grant, by=by, revoked=revoked, reason=reason)
    return revoked


def _notify_access_revoked(*, grant: Grant, by: str, revoked: list[ApiKey], reason: str) -> None:
    kept = grant.key if grant.key is not None and grant.key.is_active and grant.key not in revoked else None
    notification_queue(
        user=grant.user,
        kind=Notification.Kind.ACCESS_REVOKED,
        template="oauthprovider/email/access_revoked",
        context={
            "app": ClientName.of(grant.client_id, declared_name=grant.client_name),
            "by_admin": by == Grant.RevokedBy.ADMIN,
            "by_replay": by == Grant.RevokedBy.REPLAY,
            "reason": reason,
            "revoked": revoked,
            "kept": kept,
            "at": grant.revoked_at or timezone.now(),
            "apps_url": link("oauth:apps"),
            "keys_url": link("accounts:keys"),
            "activity_url": link("accounts:activity"),
        },
    )


def key_return(*, raw_key: str, clients: list[str] | None, context: RequestContext) -> None:
    """RFC 7009: an app gives back the key it received; `clients`: what grants may record for it.

    Revokes that app's grant (and the keys its consents created); a key the
    user chose from their own keys stays active, as when the user revokes
    the grant. Unknown keys and other apps' grants are left alone, silently.
    Without a client, a key created for an app identifies that app.

    Public clients prove nothing but holding the key, so a key that several
    apps were given speaks for none of them: any of them could be asking in
    another's name (issue #13). Nothing is revoked then.
    """
    key = ApiKey.objects.for_raw_key(raw_key)
    if key is None:
        return
    clients = clients or [key.created_for_client]
    if not any(clients):
        return
    holders = _apps_given(key)
    if holders - set(clients):
        logger.info("revocation by %s ignored: key %s was also given to other apps", clients[0], key.prefix)
        return
    grant = Grant.objects.filter(user_id=key.user_id, client_id__in=clients, key=key).first()
    if grant is not None:
        grant_revoke(grant=grant, by=Grant.RevokedBy.CLIENT, context=context)
    elif key.created_for_client in clients:
        key_revoke(key=key, context=context, actor_kind=AuditEvent.Actor.CLIENT, reason="returned by the app")


def _apps_given(key: ApiKey) -> set[str]:
    """Every app that was handed `key` or holds it in a grant (as grants record apps).

    The audit log's `token_issued` events are the lasting record of hand-outs
    (codes are purged, a grant names only its latest key).
    """
    handed = AuditEvent.objects.filter(
        kind=AuditEvent.Kind.TOKEN_ISSUED, subject_id=key.user_id, key_prefix=key.prefix
    ).values_list("client_id", flat=True)
    held = Grant.objects.filter(key=key).values_list("client_id", flat=True)
    return {*handed, *held, *([key.created_for_client] if key.created_for_client else [])}
