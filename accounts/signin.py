"""Signing in in two steps, and how recent the last strong check is: the session's side of second factors.

- After the right password, an account with a second factor is **not**
  signed in: the session holds a half-signed-in state (`PENDING`) bound to
  that account (its id and its password hash's HMAC) for
  TWO_FACTOR_SIGNIN_TTL_SECONDS, with the path to return to. Only the second
  step turns it into a session (`auth.login`, which rotates the session id).
  An account that must have a second factor (TWO_FACTOR_REQUIRED) and has
  none gets the same state marked "enrol": it may only set one up.
- A signed-in session records how it was signed in (`SECOND_FACTOR`: the
  method, absent after a password alone) and when a factor was last checked
  (`CHECKED_AT`); sensitive changes ask again when that is older than
  REAUTH_MAX_AGE_SECONDS (`recent_check_required`).
- `SecondFactorRequiredMiddleware`: a session whose account must have a
  second factor but that was signed in without one (before the operator
  turned the rule on, for instance) counts as signed out. It wraps
  `request.user` lazily, so pages that never look at the user (the token
  endpoint, the API) never read the session either.
- WebAuthn challenges live in the session too (`CHALLENGE`): one at a time,
  for one purpose, short-lived, taken (and so used up) by the first check.
"""

import base64
import functools
import time
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import login as auth_login
from django.contrib.auth.models import AnonymousUser
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.crypto import constant_time_compare
from django.utils.functional import SimpleLazyObject
from django.utils.http import urlencode

from accounts import second_factor as rules
from accounts.models import Passkey, TotpDevice, User

PENDING = "keygrant_signin"
SECOND_FACTOR = "keygrant_second_factor"
CHECKED_AT = "keygrant_checked_at"
CHALLENGE = "keygrant_webauthn"
# The browser has TIMEOUT_MS (2 minutes) to answer; a challenge is good a little longer, never more.
CHALLENGE_TTL_SECONDS = 180
MODEL_BACKEND = "accounts.backends.UserBackend"


def has_second_factor(user: User) -> bool:
    """An authenticator app switched on, or a passkey (recovery codes alone are no factor)."""
    return (
        Passkey.objects.filter(user=user).exists()
        or TotpDevice.objects.filter(user=user, confirmed_at__isnull=False).exists()
    )


def must_have_second_factor(user: User) -> bool:
    return rules.second_factor_required(
        policy=settings.TWO_FACTOR_REQUIRED, is_staff=user.is_staff, is_superuser=user.is_superuser
    )


# --- The half-signed-in state ----------------------------------------------------------------


def pending_begin(request: HttpRequest, *, user: User, next_url: str, enrol: bool = False) -> None:
    """The password was right: remember whose second step this session may take, for a short while."""
    request.session.cycle_key()  # nobody who planted this session id gets the half-signed-in state
    request.session[PENDING] = {
        "uid": user.pk,
        "hash": user.get_session_auth_hash(),
        "backend": getattr(user, "backend", MODEL_BACKEND),
        "until": time.time() + settings.TWO_FACTOR_SIGNIN_TTL_SECONDS,
        "next": next_url,
        "enrol": enrol,
    }


def pending_user(request: HttpRequest, *, enrol: bool | None = None) -> User | None:
    """The account whose second step (or enrolment, `enrol=True`) this session is in, while it lasts."""
    state = request.session.get(PENDING)
    if not isinstance(state, dict) or time.time() > state.get("until", 0):
        return None
    if enrol is not None and bool(state.get("enrol")) != enrol:
        return None
    user = User.objects.filter(pk=state.get("uid"), is_active=True).first()
    # A new password since the first step ends it, as it ends sessions.
    if user is None or not constant_time_compare(state.get("hash", ""), user.get_session_auth_hash()):
        return None
    user.backend = state.get("backend", MODEL_BACKEND)
    return user


def pending_next(request: HttpRequest) -> str:
    state = request.session.get(PENDING)
    return state.get("next", "") if isinstance(state, dict) else ""


def pending_end(request: HttpRequest) -> None:
    request.session.pop(PENDING, None)


def signin_complete(request: HttpRequest, *, user: User, method: str | None) -> None:
    """Sign in for real (a new session id, as Django's login does); `method`: the second factor used, if any."""
    request.session.pop(PENDING, None)
    request.session.pop(SECOND_FACTOR, None)
    # auth.login keeps the session id when the same account was already in it (signed in without the
    # factor it must have, say): a new id every time.
    request.session.cycle_key()
    auth_login(request, user, backend=getattr(user, "backend", MODEL_BACKEND))
    if method:
        request.session[SECOND_FACTOR] = method
    request.session[CHECKED_AT] = time.time()


def factor_checked(request: HttpRequest, *, method: str) -> None:
    """A second factor was just checked in this signed-in session (re-check, enrolment)."""
    request.session[SECOND_FACTOR] = method
    request.session[CHECKED_AT] = time.time()


# --- Re-check before sensitive changes ------------------------------------------------------


def recheck_due(request: HttpRequest) -> bool:
    """The person has a second factor and last showed one longer ago than REAUTH_MAX_AGE_SECONDS."""
    if not request.user.is_authenticated or not has_second_factor(request.user):
        return False
    checked_at = request.session.get(CHECKED_AT)
    if not request.session.get(SECOND_FACTOR) or not isinstance(checked_at, (int, float)):
        return True
    return rules.reauth_due(last_check=checked_at, now=time.time(), max_age=settings.REAUTH_MAX_AGE_SECONDS)


def recent_check_required(back_to: str | None = None):
    """Views that change what protects an account (or hand out a key) ask for the second factor again when due.

    A GET comes back to itself afterwards; a POST (its data is not kept)
    comes back to the page named `back_to`, or to its own URL.
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
            if recheck_due(request):
                if request.method == "GET":
                    target = request.get_full_path()
                else:
                    target = reverse(back_to) if back_to else request.path
                return redirect(f"{reverse('accounts:recheck')}?{urlencode({'next': target})}")
            return view(request, *args, **kwargs)

        return wrapper

    return decorator


# --- WebAuthn challenges -----------------------------------------------------------------------


@dataclass(frozen=True)
class Challenge:
    challenge: bytes
    user_handle: str | None  # the handle a registration was offered with


def challenge_store(
    request: HttpRequest, *, purpose: str, challenge: bytes, user_id: int | None, user_handle: str | None = None
) -> None:
    """One challenge per session: a new one replaces the last (and so ends it)."""
    request.session[CHALLENGE] = {
        "purpose": purpose,
        "challenge": base64.urlsafe_b64encode(challenge).decode(),
        "uid": user_id,
        "handle": user_handle,
        "until": time.time() + CHALLENGE_TTL_SECONDS,
    }


def challenge_take(request: HttpRequest, *, purpose: str, user_id: int | None) -> Challenge | None:
    """The challenge issued to this session for `purpose` (and this account), once; None when absent or stale."""
    state = request.session.pop(CHALLENGE, None)
    if not isinstance(state, dict) or state.get("purpose") != purpose or time.time() > state.get("until", 0):
        return None
    if state.get("uid") is not None and state.get("uid") != user_id:
        return None
    try:
        return Challenge(challenge=base64.urlsafe_b64decode(state["challenge"]), user_handle=state.get("handle"))
    except (KeyError, ValueError, TypeError):
        return None


# --- Enforcing TWO_FACTOR_REQUIRED ------------------------------------------------------------


class SecondFactorRequiredMiddleware:
    """A session signed in without the second factor its account must have is treated as signed out."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if settings.TWO_FACTOR_REQUIRED != "none" and hasattr(request, "user"):
            session_user = request.user
            request.user = SimpleLazyObject(lambda: _enforced(request, session_user))
        return self.get_response(request)


def _enforced(request: HttpRequest, user):
    if user.is_authenticated and not request.session.get(SECOND_FACTOR) and must_have_second_factor(user):
        return AnonymousUser()
    return user
