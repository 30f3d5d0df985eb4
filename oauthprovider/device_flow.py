"""Writes of the device flow (RFC 8628): start, the person's decision, polling, delivery.

A headless tool asks for a device code and shows its person a user code;
the person signs in at /getKeys/device, enters the code and decides on the
same consent page as the code flow; the tool polls the token endpoint and
receives the key exactly once. Each function is one transaction and records
its audit events inside it (DESIGN.md "Device flow").
"""

import secrets
import time
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.audit import RequestContext, audit_record
from accounts.limits import NO_LIMITS, KeyLimits
from accounts.models import ApiKey, AuditEvent, User
from accounts.shared_cache import cache_get, cache_set
from oauthprovider.models import DeviceAuthorization
from oauthprovider.protocol import (
    Client,
    DeviceAuthorizationRequest,
    DeviceTokenRequest,
    OAuthError,
    hash_secret,
    new_user_code,
    normalize_user_code,
    self_named_client,
)
from oauthprovider.services import consent_deny, grant_authorize, key_plaintext

# A poll this much earlier than the interval still counts as on time (network jitter).
POLL_LEEWAY_SECONDS = 1.0


@dataclass(frozen=True)
class DeviceStart:
    """What the device is told (section 3.2); the codes exist nowhere else in clear."""

    device_code: str
    user_code: str
    expires_in: int
    interval: int


def device_start(*, request: DeviceAuthorizationRequest) -> DeviceStart:
    """A new device authorization, pending until a person enters its user code."""
    device_code = secrets.token_urlsafe(32)  # 256 bits: the device's secret
    now = timezone.now()
    ttl = settings.OAUTH_DEVICE_CODE_TTL_SECONDS
    while True:  # two live authorizations never share a user code
        user_code = new_user_code()
        user_code_hash = hash_secret(user_code)
        if not DeviceAuthorization.objects.filter(user_code_hash=user_code_hash, expires_at__gt=now).exists():
            break
    DeviceAuthorization.objects.create(
        device_code_hash=hash_secret(device_code),
        user_code_hash=user_code_hash,
        client_id=request.client.client_id,
        scope=request.scope,
        resources=list(request.resources),
        interval=settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS,
        created_at=now,
        expires_at=now + timedelta(seconds=ttl),
    )
    return DeviceStart(
        device_code=device_code,
        user_code=user_code,
        expires_in=ttl,
        interval=settings.OAUTH_DEVICE_POLL_INTERVAL_SECONDS,
    )


def device_client(authorization: DeviceAuthorization) -> Client:
    """The device as a client: a name it gave itself (checked when it started)."""
    return self_named_client(authorization.client_id)


def pending_device_authorization(typed_user_code: str) -> DeviceAuthorization | None:
    """The live, undecided authorization whose user code a person typed; None for any other input."""
    user_code = normalize_user_code(typed_user_code)
    if user_code is None:
        return None
    authorization = DeviceAuthorization.objects.filter(
        user_code_hash=hash_secret(user_code), expires_at__gt=timezone.now()
    ).first()
    return authorization if authorization is not None and authorization.is_pending else None


def device_approve(
    *,
    user: User,
    authorization: DeviceAuthorization,
    key: ApiKey | None,
    context: RequestContext,
    limits: KeyLimits = NO_LIMITS,
) -> bool:
    """The person's Allow: the grant and key (a new one with `limits`), ready for the device's next poll.

    False (and nothing written) if the authorization expired or was decided
    meanwhile. Raises ClientBlocked (nothing written) for a blocked name.
    """
    with transaction.atomic():
        authorization = DeviceAuthorization.objects.select_for_update().get(pk=authorization.pk)
        if not authorization.is_pending:
            return False
        grant = grant_authorize(
            user=user,
            client=device_client(authorization),
            scope=authorization.scope,
            resources=tuple(authorization.resources),
            key=key,
            context=context,
            detail={"flow": "device"},
            limits=limits,
        )
        authorization.user, authorization.grant, authorization.key = user, grant, grant.key
        authorization.approved_at = timezone.now()
        authorization.save(update_fields=["user", "grant", "key", "approved_at"])
    return True


def device_deny(*, user: User, authorization: DeviceAuthorization, context: RequestContext) -> bool:
    """The person's Deny: the device is told access_denied, and the code is dead."""
    with transaction.atomic():
        denied = DeviceAuthorization.objects.filter(
            pk=authorization.pk, approved_at__isnull=True, denied_at__isnull=True, expires_at__gt=timezone.now()
        ).update(user=user, denied_at=timezone.now())
        if denied:
            consent_deny(user=user, client=device_client(authorization), context=context)
    return bool(denied)


_UNKNOWN = "The device code is unknown, or was issued to another client_id, or its key was already handed out."


def device_token(*, token_request: DeviceTokenRequest, context: RequestContext) -> tuple[str, str]:
    """A device polls (section 3.4); returns (the key, scope) once the person allowed, exactly once.

    Until then the answers of section 3.5. A pending poll costs one indexed
    read and no database write; only a poll that came too soon writes (the
    longer interval it must keep from then on).
    """
    authorization = (
        DeviceAuthorization.objects.select_related("key", "grant")
        .filter(device_code_hash=hash_secret(token_request.device_code))
        .first()
    )
    if authorization is None or not secrets.compare_digest(
        token_request.client_id.encode(), authorization.client_id.encode()
    ):
        raise OAuthError("invalid_grant", _UNKNOWN)
    if authorization.delivered_at is not None:
        raise OAuthError("invalid_grant", _UNKNOWN)
    if authorization.denied_at is not None:
        raise OAuthError("access_denied", "The person denied the request.")
    now = timezone.now()
    if authorization.approved_at is None:
        if authorization.is_expired(now):
            raise OAuthError("expired_token", "The device code expired; start again.")
        _check_poll_interval(authorization)
        raise OAuthError("authorization_pending", "The person has not answered yet; poll again after the interval.")
    # An approval is picked up within a code's lifetime, like an authorization code.
    if now >= authorization.approved_at + timedelta(seconds=settings.OAUTH_CODE_TTL_SECONDS):
        raise OAuthError("expired_token", "The approval was not picked up in time; start again.")
    if not authorization.key.is_active or not authorization.grant.is_active:
        raise OAuthError("invalid_grant", "The key or grant behind this device code has been revoked.")
    if authorization.key.is_expired(now):
        raise OAuthError("invalid_grant", "The key behind this device code has expired.")
    raw_key = key_plaintext(ciphertext=authorization.key.key_encrypted, prefix=authorization.key.prefix)
    with transaction.atomic(savepoint=False):
        won = DeviceAuthorization.objects.filter(pk=authorization.pk, delivered_at__isnull=True).update(
            delivered_at=now
        )
        if won:
            audit_record(
                kind=AuditEvent.Kind.TOKEN_ISSUED,
                context=context,
                actor_kind=AuditEvent.Actor.CLIENT,
                subject_id=authorization.user_id,
                client_id=authorization.grant.client_id,
                key_prefix=authorization.key.prefix,
                detail={"flow": "device"},
            )
    if not won:
        raise OAuthError("invalid_grant", _UNKNOWN)
    return raw_key, authorization.scope


def _check_poll_interval(authorization: DeviceAuthorization) -> None:
    """slow_down when polled faster than the interval, which then grows by 5 s (section 3.5).

    The time of the last poll lives in the cache, not in the row: polling
    writes nothing to the database. While the shared cache is down the
    interval is not checked: polling too fast costs one indexed read.
    """
    marker = f"oauth:device-poll:{authorization.pk}"
    now = time.time()
    last = cache_get(marker)
    cache_set(marker, now, timeout=settings.OAUTH_DEVICE_CODE_TTL_SECONDS)
    if last is not None and now - last < authorization.interval - POLL_LEEWAY_SECONDS:
        DeviceAuthorization.objects.filter(pk=authorization.pk).update(interval=F("interval") + 5)
        raise OAuthError("slow_down", f"Poll at most every {authorization.interval + 5} seconds from now on.")
