"""Account recovery by an operator: remove every second factor of a person who lost them.

    manage.py reset_second_factors alice --reason "lost phone; identity checked by video call, ticket 4711"

Removes the person's passkeys, authenticator app and recovery codes in one
transaction, records a `factors_reset` audit event with the reason, and
mails the person. Their password then signs them in alone (or, when
TWO_FACTOR_REQUIRED covers them, leads them to set up a new factor first).
Check who is asking before running it: this is how an attacker who has a
password would like to get rid of the second factor. See docs/operations.md.
"""

from django.core.management.base import BaseCommand, CommandError

from accounts.audit import SYSTEM
from accounts.factor_services import factors_reset
from accounts.models import User


class Command(BaseCommand):
    help = "Remove all second factors (passkeys, authenticator app, recovery codes) of one person, with a reason."

    def add_arguments(self, parser) -> None:
        parser.add_argument("username")
        parser.add_argument("--reason", required=True, help="Why (recorded in the audit log and told to the person).")

    def handle(self, *args, username: str, reason: str, **options) -> None:
        if not " ".join(reason.split()):
            raise CommandError("--reason must say why (it is recorded and mailed to the person).")
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        removed = factors_reset(user=user, reason=reason, context=SYSTEM)
        self.stdout.write(
            f"Removed from {user.username}: {removed['passkeys']} passkey(s), "
            f"{'an' if removed['totp'] else 'no'} authenticator app, {removed['recovery_codes']} recovery code(s). "
            "The person was mailed; the audit log has a factors_reset event."
        )
