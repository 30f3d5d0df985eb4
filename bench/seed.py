"""The scenarios' inputs, made through Keygrant's own code (run by bench/__main__.py in a subprocess).

    python -m bench.seed OUT_DIR --codes N

Settings come from the environment, the same as the server's (fresh
KEY_ENCRYPTION_KEYS included). Writes to OUT_DIR (a temporary directory,
deleted afterwards): the raw keys of /v1/me and of the floor, pending codes
with their PKCE verifiers, and a login. If the services' names or signatures
change, this is the one file to adapt (issue_code).
"""

import argparse
import json
import os
import secrets
from importlib import import_module
from pathlib import Path

import django

PASSWORD = "bench-correct-horse-battery-staple"
CLIENTS = [f"app{n}.example.com" for n in range(50)]
# Seeded codes must outlive seeding and the scenarios before the token exchange.
CODE_TTL_SECONDS = 3 * 3600


def issue_code(*, user, key, client_id: str, verifier: str) -> str:
    """A code issued the way the consent page's Allow issues it."""
    from django.conf import settings

    from accounts.audit import SYSTEM
    from oauthprovider import protocol
    from oauthprovider.services import consent_approve

    params = {
        "client_id": [client_id],
        "redirect_uri": [f"https://{client_id}/callback"],
        "response_type": ["code"],
        "code_challenge": [protocol.s256_challenge(verifier)],
        "code_challenge_method": ["S256"],
        "state": ["bench"],
    }
    client = protocol.parse_client(params, allow_loopback=True)
    auth_request = protocol.parse_authorization_request(
        params,
        client=client,
        redirect_uri=protocol.parse_redirect_uri(params, client),
        allowed_resources=settings.OAUTH_RESOURCES,
    )
    return consent_approve(user=user, auth_request=auth_request, key=key, context=SYSTEM)


def signed_in_cookie(user) -> str:
    """A session signed in as `user`, made as Django's test client does: no password check (Argon2)
    happens before the memory of the steady state is read; the sign-in scenario measures that."""
    from django.conf import settings
    from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY
    from django.utils.crypto import get_random_string

    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[SESSION_KEY] = str(user.pk)
    session[BACKEND_SESSION_KEY] = settings.AUTHENTICATION_BACKENDS[0]
    session[HASH_SESSION_KEY] = user.get_session_auth_hash()
    session.create()
    csrf_secret = get_random_string(32)  # the form's token is masked from this cookie
    return f"{settings.SESSION_COOKIE_NAME}={session.session_key}; {settings.CSRF_COOKIE_NAME}={csrf_secret}"


def seed(out: Path, *, users: int, keys_per_user: int, codes: int) -> None:
    from django.conf import settings
    from django.contrib.auth.hashers import make_password
    from django.db import transaction

    from accounts import keys as key_material
    from accounts.models import ApiKey, User

    settings.OAUTH_CODE_TTL_SECONDS = CODE_TTL_SECONDS
    password_hash = make_password(PASSWORD)  # Argon2, once: every bench user shares it
    people = User.objects.bulk_create(
        [User(username=f"bench{i:05d}", password=password_hash) for i in range(users)], batch_size=1000
    )
    people = list(User.objects.filter(username__startswith="bench").order_by("pk"))

    raw_keys: list[str] = []
    rows = []
    for user in people:
        for n in range(keys_per_user):
            raw = key_material.generate_raw_key()
            raw_keys.append(raw)
            rows.append(
                ApiKey(
                    user=user,
                    name=f"key {n}",
                    prefix=key_material.visible_prefix(raw),
                    key_hash=key_material.hash_key(raw),
                    key_encrypted=key_material.encrypt_key(raw),
                )
            )
    ApiKey.objects.bulk_create(rows, batch_size=1000)
    by_user = {}
    for key in ApiKey.objects.filter(user__in=people).order_by("pk"):
        by_user.setdefault(key.user_id, key)

    code_rows = []
    with transaction.atomic():
        for i in range(codes):
            user = people[(i * 7) % len(people)]
            client_id, verifier = CLIENTS[i % len(CLIENTS)], secrets.token_urlsafe(48)
            code = issue_code(user=user, key=by_user[user.pk], client_id=client_id, verifier=verifier)
            code_rows.append(
                {
                    "grant_type": "authorization_code",
                    "code": code,
                    "client_id": client_id,
                    "redirect_uri": f"https://{client_id}/callback",
                    "code_verifier": verifier,
                }
            )

    half = len(raw_keys) // 2  # /v1/me and the floor use different keys: the floor's UPDATE writes last_used_at
    consent_user = people[0]
    (out / "inputs.json").write_text(
        json.dumps(
            {
                "me_keys": raw_keys[:half],
                "floor_keys": raw_keys[half:],
                "codes": code_rows,
                "username": consent_user.username,
                "password": PASSWORD,
                "cookie": signed_in_cookie(consent_user),
                "consent_key_id": by_user[consent_user.pk].pk,
                "unknown_keys": [key_material.generate_raw_key() for _ in range(1000)],
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--keys-per-user", type=int, default=4)
    parser.add_argument("--codes", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bench.settings")
    django.setup()
    seed(args.out, users=args.users, keys_per_user=args.keys_per_user, codes=args.codes)


if __name__ == "__main__":
    main()
