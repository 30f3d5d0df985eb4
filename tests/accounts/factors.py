"""Helpers for the second-factor tests: an authenticator app set up the way a person does it, codes from it."""

import re
import time

from django.test import Client

from accounts.audit import SYSTEM
from accounts.factor_services import totp_activate, totp_enrol_begin
from accounts.models import User
from accounts.second_factor import TOTP_PERIOD, totp_code_at
from tests.accounts.conftest import sign_in

VERIFY_URL = "/accounts/login/verify/"


def with_totp(user: User) -> tuple[str, list[str]]:
    """Set up `user`'s authenticator app (its secret) and return the secret and the recovery codes shown."""
    secret = totp_enrol_begin(user=user).secret()
    codes = totp_activate(user=user, code=totp_code_at(secret, time.time()), context=SYSTEM)
    assert codes is not None
    return secret, codes


def next_code(secret: str, clock) -> str:
    """The code of the next time step (the one used to set the app up is spent): moves the clock on."""
    clock.advance(TOTP_PERIOD)
    return totp_code_at(secret, time.time())


def password_step(client: Client, user: User, **data):
    response = sign_in(client, user.get_username(), f"{user.get_username()}-password", **data)
    assert response.status_code == 302, response.content[:500]
    return response


def recovery_codes_on(page) -> list[str]:
    return re.findall(r"<li><code>([a-z0-9-]{19})</code></li>", page.content.decode())
