"""The rules of second factors, as pure functions: no HTTP, no ORM.

- Authenticator codes (TOTP, RFC 6238, through pyotp): 6 digits, 30-second
  steps, the current step and one on either side accepted (clock drift,
  RFC 6238 section 5.2), and a code of a step already used refused (a
  replayed code; section 5.2 "the verifier MUST NOT accept the second
  attempt of the OTP after the successful validation has been issued").
- Recovery codes: 16 characters from a 31-letter alphabet (about 79 random
  bits), shown once, stored as SHA-256. A fast hash is enough for values
  that random: nobody can enumerate 2^79 candidates, slow hash or not.
- Who must have a second factor (TWO_FACTOR_REQUIRED), when a sensitive
  change asks for it again (REAUTH_MAX_AGE_SECONDS), and the WebAuthn
  relying party derived from OAUTH_ISSUER.
"""

import hashlib
import hmac
import ipaddress
import re
import secrets
from dataclasses import dataclass
from urllib.parse import urlsplit

import pyotp
import segno

TOTP_DIGITS = 6
TOTP_PERIOD = 30
# Steps accepted on either side of the current one (RFC 6238 5.2: "at most one time step").
TOTP_DRIFT_STEPS = 1
RECOVERY_CODE_COUNT = 10
RECOVERY_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz"  # no 0/o, 1/l/i look-alikes
RECOVERY_CODE_LENGTH = 16

_TOTP_CODE = re.compile(r"[0-9]{6}", re.ASCII)
_RECOVERY_CODE = re.compile(f"[{RECOVERY_ALPHABET}]{{{RECOVERY_CODE_LENGTH}}}", re.ASCII)
# What people type around a code: spaces (apps show "123 456"), dashes (our recovery codes).
_SEPARATORS = re.compile(r"[\s-]+")


# --- Authenticator codes (TOTP) ---------------------------------------------------------


def totp_new_secret() -> str:
    """160 random bits in base32 (RFC 4226 section 4 recommends 160)."""
    return pyotp.random_base32(32)


def totp_step(now: float) -> int:
    """The RFC 6238 time step of `now` (Unix seconds)."""
    return int(now) // TOTP_PERIOD


@dataclass(frozen=True)
class TotpCheck:
    step: int | None  # the step the code belongs to, when accepted
    replayed: bool = False  # right code, but its step (or a later one) was already used

    @property
    def accepted(self) -> bool:
        return self.step is not None


def totp_check(*, secret: str, code: str, now: float, last_used_step: int = 0) -> TotpCheck:
    """Does `code` match a step within the drift of `now`, and is that step newer than the last one used?"""
    code = normalise_totp_code(code)
    if code is None:
        return TotpCheck(step=None)
    totp = pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD)
    current = totp_step(now)
    for step in range(current - TOTP_DRIFT_STEPS, current + TOTP_DRIFT_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            if step <= last_used_step:
                return TotpCheck(step=None, replayed=True)
            return TotpCheck(step=step)
    return TotpCheck(step=None)


def totp_code_at(secret: str, now: float) -> str:
    """The code an authenticator app shows at `now` (tests, and nothing else)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).generate_otp(totp_step(now))


def totp_uri(*, secret: str, account: str, issuer: str) -> str:
    """The otpauth:// URI the QR code carries (the Key Uri Format authenticator apps read)."""
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_PERIOD).provisioning_uri(
        name=account, issuer_name=issuer
    )


def qr_svg(text: str) -> str:
    """`text` as a QR code, an inline SVG drawn here (no external service, no image request)."""
    qr = segno.make(text, error="m", micro=False)
    return qr.svg_inline(
        scale=5, border=2, dark="#000", light="#fff", omitsize=True, title="QR code for your authenticator app"
    )


def secret_for_display(secret: str) -> str:
    """The secret in groups of four, for typing it into an app by hand."""
    return " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))


def normalise_totp_code(text: str) -> str | None:
    """Six ASCII digits ("123 456" accepted), else None."""
    code = _SEPARATORS.sub("", text or "")
    return code if _TOTP_CODE.fullmatch(code) else None


# --- Recovery codes ------------------------------------------------------------------------


def recovery_codes_new(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Fresh codes as people see them: `abcd-efgh-jkmn-pqrs`."""
    codes = []
    for _ in range(count):
        raw = "".join(secrets.choice(RECOVERY_ALPHABET) for _ in range(RECOVERY_CODE_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, RECOVERY_CODE_LENGTH, 4)))
    return codes


def normalise_recovery_code(text: str) -> str | None:
    """The code without dashes or spaces, lower-case; None when it cannot be one."""
    code = _SEPARATORS.sub("", text or "").lower()
    return code if _RECOVERY_CODE.fullmatch(code) else None


def recovery_code_hash(code: str) -> str:
    """SHA-256 of the normalised code (callers normalise first)."""
    return hashlib.sha256(code.encode("ascii")).hexdigest()


def code_kind(text: str) -> str | None:
    """ "totp", "recovery" or None: one field takes either, told apart by their shapes."""
    if normalise_totp_code(text) is not None:
        return "totp"
    if normalise_recovery_code(text) is not None:
        return "recovery"
    return None


# --- Policy -------------------------------------------------------------------------------

POLICIES = ("none", "staff", "all")


def second_factor_required(*, policy: str, is_staff: bool, is_superuser: bool) -> bool:
    """Whether an account must have a second factor under TWO_FACTOR_REQUIRED."""
    if policy == "all":
        return True
    if policy == "staff":
        return is_staff or is_superuser
    return False


def reauth_due(*, last_check: float | None, now: float, max_age: int) -> bool:
    """A sensitive change asks for the second factor again when the last check is older than `max_age` seconds."""
    if last_check is None:
        return True
    return not 0 <= now - last_check <= max_age


# --- WebAuthn relying party ------------------------------------------------------------------


@dataclass(frozen=True)
class RelyingParty:
    id: str  # OAUTH_ISSUER's host name
    origin: str  # OAUTH_ISSUER's scheme, host and port
    name: str = "Keygrant"

    @property
    def passkeys_possible(self) -> bool:
        """Browsers refuse an IP address as relying-party id (WebAuthn 5.1.3): no passkeys on http://127.0.0.1."""
        try:
            ipaddress.ip_address(self.id.strip("[]"))
        except ValueError:
            return True
        return False


def relying_party(issuer: str) -> RelyingParty:
    """The relying party is the issuer: its host is the RP id, its origin the only origin accepted."""
    parts = urlsplit(issuer)
    return RelyingParty(id=(parts.hostname or "").lower(), origin=f"{parts.scheme}://{parts.netloc}".lower())
