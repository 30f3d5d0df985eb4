"""Writes on a person's second factors: each in one transaction with its audit event and its mail.

Every factor change (added, removed, recovery codes made anew, all removed
by an operator) and every use of a recovery code is recorded in the audit
log and mailed to the person. No secret (a TOTP secret, a recovery code, a
challenge) is ever written to an event, a mail or a log line.
"""

import time
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from accounts import keys, passkeys
from accounts import second_factor as rules
from accounts.audit import RequestContext, audit_record
from accounts.models import AuditEvent, Notification, Passkey, RecoveryCode, TotpDevice, User
from accounts.notifications import link, notification_queue

FACTOR_NAMES = {"totp": "an authenticator app", "passkey": "a passkey", "recovery_codes": "recovery codes"}


@dataclass(frozen=True)
class Factors:
    """What protects an account beyond its password."""

    totp: bool
    passkeys: int
    recovery_codes_left: int

    @property
    def any(self) -> bool:
        """A second factor counts when it can be used on its own: an authenticator app or a passkey."""
        return self.totp or self.passkeys > 0


def factors_of(user: User) -> Factors:
    return Factors(
        totp=TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists(),
        passkeys=Passkey.objects.filter(user=user).count(),
        recovery_codes_left=RecoveryCode.objects.filter(user=user, used_at__isnull=True).count(),
    )


def _mail(*, user: User, kind: str, headline: str, context: RequestContext, detail: str = "") -> None:
    notification_queue(
        user=user,
        kind=kind,
        template="accounts/email/factor_changed",
        context={
            "headline": headline,
            "detail": detail,
            "at": timezone.now(),
            "ip_address": context.ip_address,
            "security_url": link("accounts:security"),
            "activity_url": link("accounts:activity"),
            "reset_url": link("accounts:password_reset"),
        },
    )


def _factor_added(*, user: User, factor: str, context: RequestContext, name: str = "") -> list[str]:
    """Audit and mail an added factor; the first one comes with recovery codes (returned, to show once)."""
    audit_record(
        kind=AuditEvent.Kind.FACTOR_ADDED,
        context=context,
        actor=user,
        subject=user,
        detail={"factor": factor, **({"name": name} if name else {})},
    )
    what = f"a passkey, “{name}”," if factor == "passkey" else FACTOR_NAMES[factor]
    _mail(
        user=user,
        kind=Notification.Kind.FACTOR_CHANGED,
        headline=f"You added {what} as a second factor to your Keygrant account",
        context=context,
    )
    if RecoveryCode.objects.filter(user=user, used_at__isnull=True).exists():
        return []
    return _recovery_codes_replace(user=user, context=context, mail=False)


# --- Authenticator app (TOTP) ----------------------------------------------------------------


def totp_enrol_begin(*, user: User) -> TotpDevice:
    """The unconfirmed authenticator being set up (a new secret the first time); nothing counts yet."""
    device = TotpDevice.objects.filter(user=user).first()
    if device is not None:
        return device
    return TotpDevice.objects.create(user=user, secret_encrypted=keys.encrypt_secret(rules.totp_new_secret()))


def totp_activate(*, user: User, code: str, context: RequestContext, now: float | None = None) -> list[str] | None:
    """Switch the authenticator on with a first right code; None if the code is wrong.

    Returns the recovery codes made with it (only with a person's first factor).
    """
    now = time.time() if now is None else now
    with transaction.atomic():
        device = TotpDevice.objects.select_for_update().filter(user=user, confirmed_at__isnull=True).first()
        if device is None:
            return None
        check = rules.totp_check(secret=device.secret(), code=code, now=now)
        if not check.accepted:
            return None
        TotpDevice.objects.filter(pk=device.pk).update(
            confirmed_at=timezone.now(), last_used_step=check.step, last_used_at=timezone.now()
        )
        return _factor_added(user=user, factor="totp", context=context)


def totp_use(*, user: User, code: str, now: float | None = None) -> rules.TotpCheck:
    """Check a code of the person's authenticator and use its step up (once: a replay is refused).

    The step is claimed with a conditional UPDATE, so of two requests with
    the same code at the same moment exactly one succeeds.
    """
    now = time.time() if now is None else now
    device = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).first()
    if device is None:
        return rules.TotpCheck(step=None)
    check = rules.totp_check(secret=device.secret(), code=code, now=now, last_used_step=device.last_used_step)
    if not check.accepted:
        return check
    claimed = TotpDevice.objects.filter(pk=device.pk, last_used_step__lt=check.step).update(
        last_used_step=check.step, last_used_at=timezone.now()
    )
    return check if claimed else rules.TotpCheck(step=None, replayed=True)


def totp_remove(*, user: User, context: RequestContext) -> bool:
    """Switch the authenticator off; False if there was none switched on."""
    with transaction.atomic():
        removed, _ = TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).delete()
        if not removed:
            return False
        _factor_removed(user=user, factor="totp", context=context)
    return True


# --- Passkeys ------------------------------------------------------------------------------------


def passkey_user_handle(user: User) -> str:
    """The person's WebAuthn user handle: the one their passkeys share, or a new random one."""
    existing = Passkey.objects.filter(user=user).values_list("user_handle", flat=True).first()
    return existing or passkeys.new_user_handle()


def passkey_add(
    *, user: User, name: str, user_handle: str, new: passkeys.NewPasskey, context: RequestContext
) -> tuple[Passkey, list[str]]:
    """Store a verified passkey; returns it and the recovery codes made with a first factor."""
    with transaction.atomic():
        passkey = Passkey.objects.create(
            user=user,
            name=name[:100],
            credential_id=new.credential_id,
            public_key=new.public_key,
            sign_count=new.sign_count,
            user_handle=user_handle,
            transports=new.transports,
        )
        codes = _factor_added(user=user, factor="passkey", context=context, name=passkey.name)
    return passkey, codes


def passkey_use(*, passkey: Passkey, new_sign_count: int) -> bool:
    """Record a verified use: the sign count only grows (a conditional UPDATE), the last-used time."""
    # Synced passkeys may always answer 0; then the stored count is 0 too (the library refused otherwise).
    rows = Passkey.objects.filter(pk=passkey.pk)
    rows = rows.filter(sign_count__lt=new_sign_count) if new_sign_count else rows.filter(sign_count=0)
    return bool(rows.update(sign_count=new_sign_count, last_used_at=timezone.now()))


def passkey_signin(*, passkey: Passkey, new_sign_count: int, context: RequestContext) -> bool:
    """A passkey signed its owner in on its own: record the use and the event; False if its count went back."""
    with transaction.atomic():
        if not passkey_use(passkey=passkey, new_sign_count=new_sign_count):
            return False
        audit_record(
            kind=AuditEvent.Kind.PASSKEY_SIGNIN,
            context=context,
            actor=passkey.user,
            subject=passkey.user,
            detail={"name": passkey.name},
        )
    return True


def passkey_remove(*, passkey: Passkey, context: RequestContext) -> bool:
    with transaction.atomic():
        removed, _ = Passkey.objects.filter(pk=passkey.pk).delete()
        if not removed:
            return False
        _factor_removed(user=passkey.user, factor="passkey", context=context, name=passkey.name)
    return True


def _factor_removed(*, user: User, factor: str, context: RequestContext, name: str = "") -> None:
    """Audit and mail a removed factor. Without any factor left, the recovery codes go too (nothing to recover)."""
    left = factors_of(user)
    dropped = 0
    if not left.any:
        dropped, _ = RecoveryCode.objects.filter(user=user).delete()
    audit_record(
        kind=AuditEvent.Kind.FACTOR_REMOVED,
        context=context,
        actor=user,
        subject=user,
        detail={"factor": factor, **({"name": name} if name else {}), "recovery_codes_removed": dropped},
    )
    what = f"the passkey “{name}”" if factor == "passkey" else FACTOR_NAMES[factor]
    _mail(
        user=user,
        kind=Notification.Kind.FACTOR_CHANGED,
        headline=f"You removed {what} from your Keygrant account",
        context=context,
        detail="" if left.any else "Your account no longer has a second factor: your password alone signs in.",
    )


# --- Recovery codes ----------------------------------------------------------------------------


def _recovery_codes_replace(*, user: User, context: RequestContext, mail: bool) -> list[str]:
    codes = rules.recovery_codes_new()
    RecoveryCode.objects.filter(user=user).delete()
    RecoveryCode.objects.bulk_create(
        RecoveryCode(user=user, code_hash=rules.recovery_code_hash(rules.normalise_recovery_code(code)))
        for code in codes
    )
    audit_record(
        kind=AuditEvent.Kind.RECOVERY_CODES_GENERATED,
        context=context,
        actor=user,
        subject=user,
        detail={"count": len(codes)},
    )
    if mail:
        _mail(
            user=user,
            kind=Notification.Kind.FACTOR_CHANGED,
            headline="You made new recovery codes for your Keygrant account",
            context=context,
            detail="The earlier recovery codes no longer work.",
        )
    return codes


def recovery_codes_generate(*, user: User, context: RequestContext) -> list[str]:
    """New recovery codes (the old ones stop working); returned once, to show."""
    with transaction.atomic():
        return _recovery_codes_replace(user=user, context=context, mail=True)


def recovery_code_use(*, user: User, code: str, context: RequestContext, purpose: str) -> bool:
    """Use up one recovery code (a conditional UPDATE: once, however many requests race); audited and mailed."""
    normalised = rules.normalise_recovery_code(code)
    if normalised is None:
        return False
    with transaction.atomic():
        used = RecoveryCode.objects.filter(
            user=user, code_hash=rules.recovery_code_hash(normalised), used_at__isnull=True
        ).update(used_at=timezone.now())
        if not used:
            return False
        left = RecoveryCode.objects.filter(user=user, used_at__isnull=True).count()
        audit_record(
            kind=AuditEvent.Kind.RECOVERY_CODE_USED,
            context=context,
            actor=user,
            subject=user,
            detail={"purpose": purpose, "left": left},
        )
        _mail(
            user=user,
            kind=Notification.Kind.RECOVERY_CODE_USED,
            headline="A recovery code of your Keygrant account was used",
            context=context,
            detail=f"{left} unused recovery code{'s' if left != 1 else ''} left."
            + (" Make new ones on your security page." if left <= 3 else ""),
        )
    return True


# --- Operators ------------------------------------------------------------------------------------


def factors_reset(*, user: User, reason: str, context: RequestContext, actor: User | None = None) -> dict:
    """An operator removes all of a person's second factors (they lost them); audited with the reason, mailed."""
    reason = " ".join(reason.split())
    if not reason:
        raise ValueError("a reason is required")
    with transaction.atomic():
        removed = {
            "totp": TotpDevice.objects.filter(user=user).delete()[0],
            "passkeys": Passkey.objects.filter(user=user).delete()[0],
            "recovery_codes": RecoveryCode.objects.filter(user=user).delete()[0],
        }
        audit_record(
            kind=AuditEvent.Kind.FACTORS_RESET,
            context=context,
            actor_kind=AuditEvent.Actor.ADMIN,
            actor=actor,
            subject=user,
            detail={**removed, "reason": reason[:500]},
        )
        _mail(
            user=user,
            kind=Notification.Kind.FACTOR_CHANGED,
            headline="An administrator removed the second factors of your Keygrant account",
            context=context,
            detail=f"Reason given: {reason[:500]}\n\nYour password alone now signs in. Add a passkey or an "
            "authenticator app again on your security page.",
        )
    return removed
