"""Delivery of notices: never twice, whatever number of senders run; never in the way of the request.

Real threads on a database they really share (tests/oauthprovider/test_concurrency.py explains the set-up).
"""

import threading
import time

import pytest
from django.core.mail import EmailMessage
from django.db import connections
from django.test import Client

from accounts.models import Notification, User
from accounts.notifications import notification_queue, notifications_send_due
from oauthprovider.models import Grant
from tests.conftest import authorize_params, authorize_url, consent_request_id, make_user, new_pkce_pair

# Threads on a database they really share.
pytestmark = pytest.mark.usefixtures("shared_database")

SENDERS = 4
NOTICES = 24


@pytest.fixture
def sent(monkeypatch) -> list[str]:
    """Every message handed to the mail server, by subject; each send takes a little while."""
    subjects: list[str] = []
    lock = threading.Lock()

    def send(self, fail_silently=False, **kwargs):
        time.sleep(0.01)
        with lock:
            subjects.append(self.subject)
        return 1

    monkeypatch.setattr(EmailMessage, "send", send)
    return subjects


def queue_notices(user: User, count: int) -> None:
    for i in range(count):
        notification_queue(
            user=user,
            kind=Notification.Kind.APP_GOT_KEY,
            template="oauthprovider/email/key_expiring",
            context={"key": _FakeKey(i), "holders": [], "now": None},
            deliver=False,
        )


class _FakeKey:
    def __init__(self, i: int) -> None:
        self.name, self.masked, self.expires_at = f"notice {i:02d}", "kg_x…", None


def test_concurrent_senders_send_each_notice_exactly_once(sent):
    user = make_user("alice")
    queue_notices(user, NOTICES)
    barrier = threading.Barrier(SENDERS)
    errors: list[BaseException] = []

    def sender() -> None:
        try:
            barrier.wait(timeout=30)
            notifications_send_due(batch_size=3)
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=sender) for _ in range(SENDERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert errors == []
    assert sorted(sent) == sorted(f'Your API key "notice {i:02d}" expires on' for i in range(NOTICES))
    assert Notification.objects.filter(sent_at__isnull=False).count() == NOTICES
    assert set(Notification.objects.values_list("attempts", flat=True)) == {1}


def test_a_claimed_notice_is_left_alone_by_other_senders(sent):
    queue_notices(make_user("alice"), 1)
    Notification.objects.update(claimed_until=Notification.objects.get().created_at.replace(year=2999))
    assert notifications_send_due() == (0, 0)
    assert sent == []


def test_in_the_background_the_request_does_not_wait_for_the_mail(monkeypatch, settings):
    settings.BACKGROUND_TASKS = "thread"
    release, done = threading.Event(), threading.Event()

    def slow_send(self, fail_silently=False, **kwargs):
        release.wait(timeout=30)  # a mail server that takes its time
        done.set()
        return 1

    monkeypatch.setattr(EmailMessage, "send", slow_send)
    alice = make_user("alice")
    client = Client()
    client.force_login(alice)
    page = client.get(authorize_url(authorize_params(new_pkce_pair())))

    started = time.monotonic()
    response = client.post(
        "/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"}
    )
    assert response.status_code == 302
    assert time.monotonic() - started < 5, "the consent waited for the mail server"
    assert Grant.objects.exists() and not done.is_set()

    release.set()
    assert done.wait(timeout=10), "the background sender sent it"
    for _ in range(100):
        if Notification.objects.filter(sent_at__isnull=False).exists():
            break
        time.sleep(0.05)
    assert Notification.objects.get().sent_at is not None


def test_with_cron_delivery_nothing_is_sent_until_the_command_runs(sent, settings):
    from django.core.management import call_command

    settings.BACKGROUND_TASKS = "cron"
    alice = make_user("alice")
    client = Client()
    client.force_login(alice)
    page = client.get(authorize_url(authorize_params(new_pkce_pair())))
    client.post("/getKeys/authorize", {"request": consent_request_id(page), "decision": "allow", "key": "new"})
    assert sent == [] and Notification.objects.get().sent_at is None
    call_command("send_notifications", verbosity=0)
    assert sent == ["A new API key for yourapp.com"]
