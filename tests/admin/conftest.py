"""Fixtures for the admin tests: an operator, and grants made the way users make them."""

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from accounts.admin_utils import host_a_label
from accounts.audit import SYSTEM, RequestContext, audit_record
from accounts.models import ApiKey, AuditEvent, User
from accounts.services import key_create
from oauthprovider.models import AuthorizationCode, Grant
from tests.conftest import (
    CLIENT_ID,
    REDIRECT_URI,
    approve,
    authorize_params,
    force_login_with_second_factor,
    make_user,
    new_pkce_pair,
)


@pytest.fixture
def operator(db) -> User:
    return User.objects.create_superuser(username="operator", email="operator@example.com", password="operator-pw")


@pytest.fixture
def operator_client(operator) -> Client:
    client = Client(HTTP_USER_AGENT="operator-browser", REMOTE_ADDR="192.0.2.10")
    return force_login_with_second_factor(client, operator)


def consent(client: Client, *, key: str = "new", client_id: str = CLIENT_ID) -> Grant:
    """Alice (or whoever `client` is logged in as) allows `client_id` through the real flow."""
    redirect_uri = REDIRECT_URI if client_id == CLIENT_ID else f"https://{host_a_label(client_id)}/callback"
    approve(client, authorize_params(new_pkce_pair(), client_id=client_id, redirect_uri=redirect_uri), key=key)
    return Grant.objects.select_related("key").get(client_id=host_a_label(client_id))


@pytest.fixture
def grant_with_new_key(alice_client) -> Grant:
    """Alice's grant for yourapp.com, whose consent created a key."""
    return consent(alice_client)


@pytest.fixture
def grant_with_existing_key(alice_client, alice_key) -> Grant:
    """Alice's grant for yourapp.com, for which she chose her existing key 'laptop'."""
    return consent(alice_client, key=str(alice_key[0].pk))


def populate(count: int, *, start: int = 0) -> None:
    """`count` users, each with a key, a grant (every other one revoked by an
    admin), a code and a few audit events: rows for every admin list."""
    operator = User.objects.filter(is_superuser=True).first()
    now = timezone.now()
    context = RequestContext(ip_address="198.51.100.7", user_agent="pytest")
    for i in range(start, start + count):
        user = make_user(f"user{i:03d}")
        host = f"app{i:03d}.example"
        key, _ = key_create(user=user, name=f"key {i}", context=context, created_for_client=host)
        revoked = i % 2 == 1
        grant = Grant.objects.create(
            user=user,
            client_id=host,
            scope="key:read",
            key=key,
            key_created_by_consent=True,
            revoked_at=now if revoked else None,
            revoked_by=Grant.RevokedBy.ADMIN if revoked else "",
            revoked_by_user=operator if revoked else None,
        )
        AuthorizationCode.objects.create(
            code_hash=f"{i:064d}",
            user=user,
            grant=grant,
            key=key,
            client_id=host,
            redirect_uri=f"https://{host}/callback",
            scope="key:read",
            code_challenge="x" * 43,
            created_at=now,
            expires_at=now + timedelta(seconds=60 if i % 3 else -60),
            redeemed_at=now if i % 3 == 2 else None,
        )
        audit_record(
            kind=AuditEvent.Kind.GRANT_REVOKED,
            context=context,
            actor_kind=AuditEvent.Actor.ADMIN,
            actor=operator,
            subject=user,
            client_id=host,
            key_prefix=key.prefix,
        )
    assert ApiKey.objects.count() >= count


__all__ = ["SYSTEM", "consent", "populate"]
