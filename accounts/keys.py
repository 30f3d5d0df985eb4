"""API key material: generation, lookup hash, encryption at rest, display.

A key looks like ``kg_<54 base62 chars><6 base62 checksum chars>``: the
``kg_`` prefix and the CRC32 checksum let secret scanners recognise a leaked
key without asking us. 40 random bytes give 320 bits, so the part shown as
the visible prefix still leaves well over 256 bits secret.
"""

import hashlib
import secrets
import zlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings

KEY_PREFIX = "kg_"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LENGTH = 54  # 62**54 > 2**320
_CHECKSUM_LENGTH = 6  # 62**6 > 2**32
_VISIBLE_LENGTH = len(KEY_PREFIX) + 8
KEY_LENGTH = len(KEY_PREFIX) + _BODY_LENGTH + _CHECKSUM_LENGTH


def _base62(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECKSUM_LENGTH)


def generate_raw_key() -> str:
    body = _base62(int.from_bytes(secrets.token_bytes(40)), _BODY_LENGTH)
    return KEY_PREFIX + body + _checksum(body)


def looks_like_key(raw: str) -> bool:
    """Shape and checksum only: rejects typos and garbage before any lookup."""
    if len(raw) != KEY_LENGTH or not raw.startswith(KEY_PREFIX):
        return False
    body, checksum = raw[len(KEY_PREFIX) : -_CHECKSUM_LENGTH], raw[-_CHECKSUM_LENGTH:]
    # The checksum too: compare_digest raises TypeError on non-ASCII str.
    if any(c not in _ALPHABET for c in body + checksum):
        return False
    return secrets.compare_digest(_checksum(body), checksum)


def hash_key(raw: str) -> str:
    """SHA-256 is enough for lookup: the key has 320 random bits, no slow hash needed."""
    return hashlib.sha256(raw.encode()).hexdigest()


def visible_prefix(raw: str) -> str:
    return raw[:_VISIBLE_LENGTH]


def _fernet() -> MultiFernet:
    return MultiFernet([Fernet(k) for k in settings.KEY_ENCRYPTION_KEYS])


def encrypt_key(raw: str) -> str:
    return _fernet().encrypt(raw.encode()).decode()


def decrypt_key(token: str) -> str:
    """Raises KeyDecryptionError when no configured key-encryption key fits."""
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise KeyDecryptionError("no KEY_ENCRYPTION_KEYS entry decrypts this API key") from exc


def encrypt_secret(secret: str) -> str:
    """Other secrets kept at rest (TOTP secrets), under the same KEY_ENCRYPTION_KEYS."""
    return _fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken as exc:
        raise KeyDecryptionError("no KEY_ENCRYPTION_KEYS entry decrypts this secret") from exc


def reencrypt_key(token: str) -> str:
    """Re-encrypt under the first (current) key-encryption key."""
    return _fernet().rotate(token.encode()).decode()


class KeyDecryptionError(Exception):
    pass
