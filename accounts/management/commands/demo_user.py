"""Create (or reset) the development logins and print them."""

import secrets

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User


class Command(BaseCommand):
    help = "Create or reset the 'demo' user and the 'admin' superuser, and print their passwords (development only)."

    def handle(self, *args, **options) -> None:
        if not settings.DEBUG:
            raise CommandError("demo_user only runs with DEBUG on: it prints passwords.")
        logins = []
        for username, is_admin in (("demo", False), ("admin", True)):
            user, _ = User.objects.get_or_create(username=username, defaults={"email": f"{username}@example.com"})
            password = secrets.token_urlsafe(9)
            user.set_password(password)
            user.is_staff = user.is_superuser = is_admin
            user.first_name = "Demo" if not is_admin else "Admin"
            user.save()
            logins.append((username, password))
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS("Keygrant development logins"))
        for username, password in logins:
            self.stdout.write(f"  {username:<6} password: {password}")
        self.stdout.write(
            f"  Sign in at {settings.OAUTH_ISSUER}/accounts/login/  (admin: {settings.OAUTH_ISSUER}/admin/)"
        )
        if settings.TWO_FACTOR_REQUIRED != "none":
            self.stdout.write(
                "  admin sets up a second factor (an authenticator app) at its first sign-in "
                f"(TWO_FACTOR_REQUIRED={settings.TWO_FACTOR_REQUIRED})"
            )
        self.stdout.write("")
