"""Re-encrypt every stored API key, and every authenticator-app (TOTP) secret, under the first
KEY_ENCRYPTION_KEYS entry.

The rotation procedure (docs/operations.md "Rotating the key-encryption
key"): prepend a new Fernet key to KEY_ENCRYPTION_KEYS on every instance, run
this command, then remove the old key.
"""

import hashlib

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from accounts.audit import SYSTEM, audit_record
from accounts.keys import reencrypt_key
from accounts.models import ApiKey, AuditEvent, TotpDevice

_MAX_PREFIXES_REPORTED = 20


def kek_fingerprint(kek: str) -> str:
    """Names a key-encryption key in logs and the audit log without revealing it."""
    return hashlib.sha256(kek.encode()).hexdigest()[:12]


class Command(BaseCommand):
    help = (
        "Re-encrypt every API key (active and revoked) under the first KEY_ENCRYPTION_KEYS entry, "
        "in short batches, and record a kek_rotated audit event. Run it after prepending a new key; "
        "remove the old key only once it reports no failures."
    )

    def add_arguments(self, parser) -> None:
        parser.add_argument(
            "--batch-size",
            type=int,
            default=None,
            help="Keys re-encrypted per transaction (default: MAINTENANCE_BATCH_SIZE).",
        )
        parser.add_argument("--dry-run", action="store_true", help="Count the keys to re-encrypt; change nothing.")

    def handle(self, *args, batch_size, dry_run, **options) -> None:
        batch_size = settings.MAINTENANCE_BATCH_SIZE if batch_size is None else batch_size
        if batch_size < 1:
            raise CommandError("--batch-size must be >= 1.")
        if not settings.KEY_ENCRYPTION_KEYS:
            raise CommandError("KEY_ENCRYPTION_KEYS is empty.")
        current = Fernet(settings.KEY_ENCRYPTION_KEYS[0])
        fingerprint = kek_fingerprint(settings.KEY_ENCRYPTION_KEYS[0])
        counts = {"keys": 0, "reencrypted": 0, "already_current": 0, "failed": 0}
        failed_prefixes: list[str] = []
        last_pk = 0
        while True:
            # One short transaction per batch; rows are locked only while
            # their batch is rewritten.
            with transaction.atomic():
                batch = list(
                    ApiKey.objects.select_for_update()
                    .filter(pk__gt=last_pk)
                    .order_by("pk")
                    .only("pk", "prefix", "key_encrypted")[:batch_size]
                )
                if not batch:
                    break
                changed = []
                for key in batch:
                    counts["keys"] += 1
                    try:
                        current.decrypt(key.key_encrypted.encode())
                        counts["already_current"] += 1
                        continue
                    except InvalidToken:
                        pass
                    try:
                        key.key_encrypted = reencrypt_key(key.key_encrypted)
                    except InvalidToken:
                        counts["failed"] += 1
                        failed_prefixes.append(key.prefix)
                        continue
                    changed.append(key)
                if not dry_run:
                    ApiKey.objects.bulk_update(changed, ["key_encrypted"])
                counts["reencrypted"] += len(changed)
            last_pk = batch[-1].pk

        totp = _reencrypt_totp_secrets(current=current, batch_size=batch_size, dry_run=dry_run)
        counts.update({f"totp_{name}": value for name, value in totp.items() if name != "failed_users"})

        verb = "Would re-encrypt" if dry_run else "Re-encrypted"
        self.stdout.write(
            f"{verb} {counts['reencrypted']} of {counts['keys']} keys under key-encryption key "
            f"{fingerprint}; {counts['already_current']} already used it."
        )
        self.stdout.write(
            f"{verb} {totp['reencrypted']} of {totp['secrets']} authenticator-app secrets; "
            f"{totp['already_current']} already used it."
        )
        if not dry_run:
            with transaction.atomic():
                audit_record(
                    kind=AuditEvent.Kind.KEK_ROTATED,
                    context=SYSTEM,
                    actor_kind=AuditEvent.Actor.SYSTEM,
                    detail={
                        **counts,
                        "kek_fingerprint": fingerprint,
                        "keks_configured": len(settings.KEY_ENCRYPTION_KEYS),
                        "failed_prefixes": failed_prefixes[:_MAX_PREFIXES_REPORTED],
                        "totp_failed_users": totp["failed_users"][:_MAX_PREFIXES_REPORTED],
                    },
                )
        if totp["failed"]:
            raise CommandError(
                f"{totp['failed']} authenticator-app secrets could not be decrypted with any KEY_ENCRYPTION_KEYS "
                f"entry (user ids: {', '.join(map(str, totp['failed_users'][:_MAX_PREFIXES_REPORTED]))}). "
                "Do not remove an old key-encryption key until this is resolved."
            )
        if counts["failed"]:
            raise CommandError(
                f"{counts['failed']} keys could not be decrypted with any KEY_ENCRYPTION_KEYS entry "
                f"(prefixes: {', '.join(failed_prefixes[:_MAX_PREFIXES_REPORTED])}). "
                "Do not remove an old key-encryption key until this is resolved."
            )


def _reencrypt_totp_secrets(*, current: Fernet, batch_size: int, dry_run: bool) -> dict:
    """The same for TOTP secrets (accounts.models.TotpDevice): batches, skip current, report failures."""
    counts = {"secrets": 0, "reencrypted": 0, "already_current": 0, "failed": 0, "failed_users": []}
    last_pk = 0
    while True:
        with transaction.atomic():
            batch = list(
                TotpDevice.objects.select_for_update()
                .filter(pk__gt=last_pk)
                .order_by("pk")
                .only("pk", "user_id", "secret_encrypted")[:batch_size]
            )
            if not batch:
                break
            changed = []
            for device in batch:
                counts["secrets"] += 1
                try:
                    current.decrypt(device.secret_encrypted.encode())
                    counts["already_current"] += 1
                    continue
                except InvalidToken:
                    pass
                try:
                    device.secret_encrypted = reencrypt_key(device.secret_encrypted)
                except InvalidToken:
                    counts["failed"] += 1
                    counts["failed_users"].append(device.user_id)
                    continue
                changed.append(device)
            if not dry_run:
                TotpDevice.objects.bulk_update(changed, ["secret_encrypted"])
            counts["reencrypted"] += len(changed)
        last_pk = batch[-1].pk
    return counts
