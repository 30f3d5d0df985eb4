"""Emails that tell a person what happened to their keys: queued with the event, sent after it.

`notification_queue` writes one `Notification` row inside the transaction
of the event (so a rolled-back event sends nothing and a committed one is
never lost) and asks for delivery after the commit (accounts.background).
`notifications_send_due` is the sender: the background thread, and the
`send_notifications` command from cron, both call it.

Sent once: a sender first claims rows (one conditional UPDATE per row, on
PostgreSQL after `SELECT ... FOR UPDATE SKIP LOCKED`) and only sends what it
claimed, so two senders never send the same notice. A failed send is logged
and retried later with a growing delay, up to NOTIFICATION_MAX_ATTEMPTS.

Links in mails are built from OAUTH_ISSUER, never from a request's Host.
"""

import logging
import secrets
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.core.mail import EmailMessage
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from accounts.background import run_after_commit
from accounts.models import Notification, User

logger = logging.getLogger(__name__)

# A claim lasts this long: far longer than one SMTP exchange (EMAIL_TIMEOUT_SECONDS).
CLAIM_SECONDS = 300
FIRST_RETRY_SECONDS = 60
MAX_RETRY_SECONDS = 6 * 3600


def link(name: str, *args) -> str:
    """An absolute link for a mail: the configured public URL, never the Host header."""
    return settings.OAUTH_ISSUER + reverse(name, args=args)


@dataclass(frozen=True)
class Rendered:
    subject: str
    body: str


def render_mail(template: str, context: dict) -> Rendered:
    """`<template>_subject.txt` and `<template>.txt`, with `base_url` and the recipient in the context."""
    subject = " ".join(render_to_string(f"{template}_subject.txt", context).split())
    return Rendered(subject=subject[:200], body=render_to_string(f"{template}.txt", context))


def notification_queue(
    *,
    user: User,
    kind: str,
    template: str,
    context: dict,
    dedupe_key: str | None = None,
    deliver: bool = True,
) -> Notification | None:
    """Queue one mail to `user`; call it inside the transaction of the event it tells about.

    None when the person has no email address, or when a notice with the
    same `dedupe_key` already exists (it is sent once). With `deliver` the
    sender is woken after the commit; a command that sends by itself passes False.
    """
    if not user.email:
        return None
    rendered = render_mail(template, {"user": user, "base_url": settings.OAUTH_ISSUER, **context})
    try:
        with transaction.atomic():
            notification = Notification.objects.create(
                user=user,
                kind=kind,
                to_address=user.email,
                subject=rendered.subject,
                body=rendered.body,
                dedupe_key=dedupe_key,
            )
    except IntegrityError:
        if dedupe_key is None:
            raise
        return None
    if deliver:
        run_after_commit(notifications_send_due)
    return notification


def retry_delay(attempts: int) -> timedelta:
    """1, 2, 4, 8 ... minutes after the failed attempt number `attempts`, at most 6 hours."""
    return timedelta(seconds=min(FIRST_RETRY_SECONDS * 2 ** max(attempts - 1, 0), MAX_RETRY_SECONDS))


def _claim(*, limit: int) -> tuple[str, list[Notification]]:
    """Take up to `limit` due notices for this sender; nobody else sends them until the claim ends."""
    now = timezone.now()
    token = secrets.token_hex(16)
    due = (
        Notification.objects.filter(sent_at__isnull=True, failed_at__isnull=True, next_attempt_at__lte=now)
        .filter(Q(claimed_until__isnull=True) | Q(claimed_until__lt=now))
        .order_by("next_attempt_at", "pk")
    )
    with transaction.atomic():
        if connection.features.has_select_for_update_skip_locked:
            # PostgreSQL: rows another sender is claiming right now are skipped, not waited for.
            due = due.select_for_update(skip_locked=True)
        ids = list(due.values_list("pk", flat=True)[:limit])
        # SQLite runs this transaction alone (IMMEDIATE); the conditions are repeated
        # so that a row claimed meanwhile is never claimed twice anyway.
        Notification.objects.filter(pk__in=ids, sent_at__isnull=True, failed_at__isnull=True).filter(
            Q(claimed_until__isnull=True) | Q(claimed_until__lt=now)
        ).update(claimed_until=now + timedelta(seconds=CLAIM_SECONDS), claim_token=token, attempts=F("attempts") + 1)
    return token, list(Notification.objects.filter(pk__in=ids, claim_token=token).order_by("pk"))


def _send(notification: Notification) -> None:
    EmailMessage(
        subject=notification.subject,
        body=notification.body,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[notification.to_address],
    ).send()


def _record_failure(notification: Notification, token: str, exc: Exception) -> None:
    now = timezone.now()
    error = f"{type(exc).__name__}: {exc}".replace("\x00", "")[:300]
    final = notification.attempts >= settings.NOTIFICATION_MAX_ATTEMPTS
    Notification.objects.filter(pk=notification.pk, claim_token=token).update(
        claimed_until=None,
        last_error=error,
        next_attempt_at=now + retry_delay(notification.attempts),
        failed_at=now if final else None,
    )
    log = logger.error if final else logger.warning
    log(
        "notification %s (%s) to user %s failed, attempt %s%s: %s",
        notification.pk,
        notification.kind,
        notification.user_id,
        notification.attempts,
        "; giving up" if final else "; will retry",
        type(exc).__name__,
    )


def notifications_send_due(*, batch_size: int | None = None, max_batches: int | None = None) -> tuple[int, int]:
    """Send what is due, claim by claim; returns (sent, failed). Safe beside any number of other senders."""
    batch_size = batch_size or settings.MAINTENANCE_BATCH_SIZE
    sent = failed = batches = 0
    while max_batches is None or batches < max_batches:
        token, claimed = _claim(limit=batch_size)
        batches += 1
        if not claimed:
            break
        for notification in claimed:
            try:
                _send(notification)
            except Exception as exc:  # noqa: BLE001 - any mail failure is retried later
                _record_failure(notification, token, exc)
                failed += 1
                continue
            Notification.objects.filter(pk=notification.pk, claim_token=token).update(
                sent_at=timezone.now(), claimed_until=None, last_error=""
            )
            sent += 1
        if len(claimed) < batch_size:
            break
    return sent, failed


def notifications_purge(*, older_than: timedelta) -> int:
    """Delete notices sent or given up more than `older_than` ago; returns how many."""
    cutoff = timezone.now() - older_than
    deleted, _ = Notification.objects.filter(Q(sent_at__lt=cutoff) | Q(failed_at__lt=cutoff)).delete()
    return deleted
