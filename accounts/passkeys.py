"""Passkeys (WebAuthn) through py_webauthn: the ceremonies' options and the checks of their answers.

No HTTP and no ORM here: the views keep the challenge in the session
(accounts.signin) and the services store what a check returns. The relying
party is OAUTH_ISSUER (accounts.second_factor.relying_party): its host is
the RP id, its origin the only origin accepted, so a page served under any
other name cannot use a passkey made for Keygrant.

Everything a browser sends here is hostile input: any failure to parse or
verify it is a `PasskeyError`, never an exception that reaches the view.
"""

import json
import logging
import secrets
from dataclasses import dataclass

from webauthn import (
    generate_authentication_options,
    generate_registration_options,
    options_to_json,
    verify_authentication_response,
    verify_registration_response,
)
from webauthn.helpers import base64url_to_bytes, bytes_to_base64url, parse_authentication_credential_json
from webauthn.helpers.structs import (
    AuthenticatorSelectionCriteria,
    AuthenticatorTransport,
    PublicKeyCredentialDescriptor,
    ResidentKeyRequirement,
    UserVerificationRequirement,
)

from accounts.second_factor import RelyingParty

logger = logging.getLogger(__name__)

# How long the browser may take (milliseconds); the challenge lives a little longer (accounts.signin).
TIMEOUT_MS = 120_000
# A credential the browser posts is a few hundred bytes; anything far bigger is refused unread.
MAX_CREDENTIAL_JSON = 64 * 1024


class PasskeyError(Exception):
    """The browser's answer is not a valid passkey ceremony for this challenge."""


@dataclass(frozen=True)
class NewPasskey:
    credential_id: str  # base64url
    public_key: bytes
    sign_count: int
    transports: list[str]


@dataclass(frozen=True)
class Assertion:
    """What a sign-in answer claims, before it is verified: which credential, whose handle."""

    credential_id: str  # base64url
    user_handle: str | None  # base64url


def new_user_handle() -> str:
    """A random WebAuthn user handle (64 bytes at most, no personal data: WebAuthn 5.4.3)."""
    return bytes_to_base64url(secrets.token_bytes(32))


def _descriptors(credential_ids: list[str]) -> list[PublicKeyCredentialDescriptor]:
    return [PublicKeyCredentialDescriptor(id=base64url_to_bytes(c)) for c in credential_ids]


def registration_options(
    rp: RelyingParty, *, user_handle: str, username: str, display_name: str, existing: list[str]
) -> tuple[str, bytes]:
    """Options for navigator.credentials.create() as JSON, and their challenge.

    A passkey is a discoverable credential (resident key required), so it can
    sign in without a username; the person's existing passkeys are excluded,
    so one authenticator is not registered twice.
    """
    options = generate_registration_options(
        rp_id=rp.id,
        rp_name=rp.name,
        user_id=base64url_to_bytes(user_handle),
        user_name=username,
        user_display_name=display_name or username,
        timeout=TIMEOUT_MS,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED,
            user_verification=UserVerificationRequirement.PREFERRED,
        ),
        exclude_credentials=_descriptors(existing),
    )
    return options_to_json(options), options.challenge


def registration_verify(rp: RelyingParty, *, credential_json: str, challenge: bytes) -> NewPasskey:
    """Check the answer to create() against the challenge, the RP id and the origin."""
    credential = _loads(credential_json)
    try:
        verified = verify_registration_response(
            credential=credential, expected_challenge=challenge, expected_rp_id=rp.id, expected_origin=rp.origin
        )
    except Exception as exc:  # noqa: BLE001 - hostile input: every failure is a refusal
        logger.info("passkey registration refused: %s", type(exc).__name__)
        raise PasskeyError("The passkey could not be registered.") from None
    response = credential.get("response") if isinstance(credential, dict) else None
    transports = response.get("transports") if isinstance(response, dict) else None
    known = {t.value for t in AuthenticatorTransport}
    return NewPasskey(
        credential_id=bytes_to_base64url(verified.credential_id),
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        transports=[t for t in transports if t in known][:8] if isinstance(transports, list) else [],
    )


def authentication_options(rp: RelyingParty, *, allowed: list[str], user_verification: bool) -> tuple[str, bytes]:
    """Options for navigator.credentials.get() as JSON, and their challenge.

    `allowed` empty: any discoverable credential of this RP (a sign-in
    without a username). `user_verification`: the passkey must verify the
    person (PIN, biometrics), as when it replaces the password.
    """
    options = generate_authentication_options(
        rp_id=rp.id,
        timeout=TIMEOUT_MS,
        allow_credentials=_descriptors(allowed),
        user_verification=(
            UserVerificationRequirement.REQUIRED if user_verification else UserVerificationRequirement.PREFERRED
        ),
    )
    return options_to_json(options), options.challenge


def assertion_read(credential_json: str) -> Assertion:
    """Which credential an answer to get() names (and the user handle it carries), before verifying it."""
    try:
        parsed = parse_authentication_credential_json(_loads(credential_json))
    except Exception as exc:  # noqa: BLE001 - hostile input
        logger.info("passkey answer unreadable: %s", type(exc).__name__)
        raise PasskeyError("The passkey answer could not be read.") from None
    handle = parsed.response.user_handle
    return Assertion(
        credential_id=bytes_to_base64url(parsed.raw_id),
        user_handle=bytes_to_base64url(handle) if handle else None,
    )


def assertion_verify(
    rp: RelyingParty,
    *,
    credential_json: str,
    challenge: bytes,
    public_key: bytes,
    sign_count: int,
    user_verification: bool,
) -> int:
    """Check an answer to get() with the stored public key; returns the new sign count.

    The library refuses a sign count that did not grow (when either is not
    zero): a sign of a cloned authenticator (WebAuthn 6.1.1).
    """
    try:
        verified = verify_authentication_response(
            credential=_loads(credential_json),
            expected_challenge=challenge,
            expected_rp_id=rp.id,
            expected_origin=rp.origin,
            credential_public_key=public_key,
            credential_current_sign_count=sign_count,
            require_user_verification=user_verification,
        )
    except Exception as exc:  # noqa: BLE001 - hostile input: every failure is a refusal
        logger.info("passkey assertion refused: %s", type(exc).__name__)
        raise PasskeyError("The passkey could not be verified.") from None
    return verified.new_sign_count


def _loads(credential_json: str) -> dict:
    if not credential_json or len(credential_json) > MAX_CREDENTIAL_JSON:
        raise PasskeyError("No passkey answer was received.")
    try:
        value = json.loads(credential_json)
    except (ValueError, RecursionError):
        raise PasskeyError("The passkey answer could not be read.") from None
    if not isinstance(value, dict):
        raise PasskeyError("The passkey answer could not be read.")
    return value
