"""The signed-in person and their session, read with fixed statements, mean what Django's own reads mean."""

from datetime import timedelta

from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from accounts.backends import UserBackend
from accounts.sessions import SessionStore
from tests.accounts.conftest import sign_in


def test_a_signed_in_person_stays_signed_in_across_requests(alice):
    client = Client()
    sign_in(client, "alice", "alice-password")
    assert client.get("/keys/").status_code == 200
    assert client.get("/apps/").status_code == 200


def test_an_expired_session_signs_nobody_in(alice):
    client = Client()
    sign_in(client, "alice", "alice-password")
    Session.objects.update(expire_date=timezone.now() - timedelta(seconds=1))
    response = client.get("/keys/")
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_a_session_is_read_with_its_data_and_an_unknown_or_expired_one_is_empty(db):
    store = SessionStore()
    store["colour"] = "green"
    store.save()
    assert SessionStore(store.session_key)["colour"] == "green"

    Session.objects.filter(session_key=store.session_key).update(expire_date=timezone.now() - timedelta(seconds=1))
    expired = SessionStore(store.session_key)
    assert "colour" not in expired
    assert expired.session_key is None, "an expired session's key is not reused"
    assert "colour" not in SessionStore("x" * 32)


def test_a_deactivated_person_is_signed_out_at_their_next_request(alice):
    client = Client()
    sign_in(client, "alice", "alice-password")
    alice.is_active = False
    alice.save()
    assert client.get("/keys/").status_code == 302
    assert UserBackend().get_user(alice.pk) is None


def test_the_backend_reads_a_person_by_id_and_refuses_a_malformed_id(alice):
    assert UserBackend().get_user(alice.pk) == alice
    assert UserBackend().get_user(str(alice.pk)) == alice
    assert UserBackend().get_user("not-a-number") is None
    assert UserBackend().get_user(alice.pk + 1000) is None
