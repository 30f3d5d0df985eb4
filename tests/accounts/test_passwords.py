"""Changing a password, and resetting a forgotten one by email."""

import re

import pytest
from django.test import Client

from tests.accounts.conftest import sign_in

RESET_URL = "/accounts/password/reset/"


def test_a_signed_in_person_changes_their_password(alice, alice_client):
    page = alice_client.get("/accounts/password/change/")
    assert page.status_code == 200
    assert '<label for="id_old_password">' in page.content.decode()
    wrong = alice_client.post(
        "/accounts/password/change/",
        {"old_password": "nope", "new_password1": "a brand new passphrase", "new_password2": "a brand new passphrase"},
    )
    assert wrong.status_code == 200
    response = alice_client.post(
        "/accounts/password/change/",
        {
            "old_password": "alice-password",
            "new_password1": "a brand new passphrase",
            "new_password2": "a brand new passphrase",
        },
    )
    assert response["Location"] == "/accounts/password/change/done/"
    assert alice_client.get(response["Location"]).status_code == 200
    assert alice_client.get("/keys/").status_code == 200  # still signed in here
    assert sign_in(Client(), "alice", "a brand new passphrase").status_code == 302
    assert sign_in(Client(), "alice", "alice-password").status_code == 200


def test_a_forgotten_password_is_reset_through_a_link_sent_by_email(alice, mailoutbox, settings):
    settings.OAUTH_ISSUER = "https://keys.example.com"
    settings.ALLOWED_HOSTS = ["testserver", "evil.example"]  # even with a lax host list...
    client = Client()
    assert client.get(RESET_URL).status_code == 200
    response = client.post(RESET_URL, {"email": "alice@example.com"}, HTTP_HOST="evil.example")
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert len(mailoutbox) == 1
    message = mailoutbox[0]
    assert message.to == ["alice@example.com"]
    assert message.subject == "Reset your Keygrant password"
    # ...and the link is built from the configured public URL, not from the request.
    link = re.search(r"https://keys\.example\.com(/accounts/password/reset/\S+/\S+/)", message.body)
    assert link, message.body

    to_form = client.get(link.group(1))
    assert to_form.status_code == 302
    assert to_form["Location"].endswith("/set-password/")  # the token leaves the URL (no Referer leak)
    form = client.get(to_form["Location"])
    assert "Choose a new password" in form.content.decode()
    done = client.post(
        to_form["Location"], {"new_password1": "reset passphrase 42", "new_password2": "reset passphrase 42"}
    )
    assert done["Location"] == "/accounts/password/reset/done/"
    assert client.get(done["Location"]).status_code == 200
    assert sign_in(Client(), "alice", "reset passphrase 42").status_code == 302

    # The link works once.
    again = Client().get(link.group(1))
    assert "This link no longer works" in again.content.decode()


def test_an_unknown_email_gets_the_same_answer_and_no_mail(db, mailoutbox):
    response = Client().post(RESET_URL, {"email": "nobody@example.com"})
    assert response["Location"] == "/accounts/password/reset/sent/"
    assert mailoutbox == []


def reset_link(message) -> str:
    return re.search(r"https?://[^/\s]+(/accounts/password/reset/\S+/\S+/)", message.body).group(1)


def reset_with(link: str, password: str, client: Client | None = None):
    client = client or Client()
    to_form = client.get(link)
    assert to_form.status_code == 302, "the link still works"
    return client.post(to_form["Location"], {"new_password1": password, "new_password2": password})


@pytest.mark.usefixtures("counter_store")
def test_reset_requests_are_limited_per_address(alice, mailoutbox, settings, clock):
    settings.PASSWORD_RESET_REQUESTS_PER_HOUR = 2
    for n in range(2):
        Client().post(RESET_URL, {"email": f"someone{n}@example.com"}, REMOTE_ADDR="203.0.113.7")
    refused = Client().post(RESET_URL, {"email": "bob@example.com"}, REMOTE_ADDR="203.0.113.7")
    assert refused.status_code == 429
    assert "Too many password reset requests. Try again in 60 minutes." in refused.content.decode()
    assert refused["Retry-After"] == "3600"
    clock.advance(3600)
    assert Client().post(RESET_URL, {"email": "alice@example.com"}, REMOTE_ADDR="203.0.113.7").status_code == 302
    assert len(mailoutbox) == 1


@pytest.mark.usefixtures("counter_store")
def test_a_flooded_mailbox_gets_no_more_mail_yet_its_owner_can_always_reset(alice, mailoutbox, settings, clock):
    """Issue #13 item 4: five requests for an address used to block its owner's own reset for an hour."""
    settings.PASSWORD_RESET_REQUESTS_PER_HOUR = 2
    for n in range(6):
        Client().post(RESET_URL, {"email": "alice@example.com"}, REMOTE_ADDR=f"203.0.113.{n}")
    assert len(mailoutbox) == 2  # the flood stops at the limit

    owners = Client().post(RESET_URL, {"email": "alice@example.com"}, REMOTE_ADDR="198.51.100.10")
    assert owners.status_code == 302 and owners["Location"] == "/accounts/password/reset/sent/"
    # The mailbox already holds this hour's links, and the newest works.
    done = reset_with(reset_link(mailoutbox[-1]), "reset passphrase 42")
    assert done["Location"] == "/accounts/password/reset/done/"
    assert sign_in(Client(), "alice", "reset passphrase 42").status_code == 302


@pytest.mark.usefixtures("counter_store")
def test_the_owner_s_own_browser_is_never_refused_a_reset(alice, mailoutbox, settings, clock):
    settings.PASSWORD_RESET_REQUESTS_PER_HOUR = 2
    browser = Client()
    assert sign_in(browser, "alice", "alice-password", ip="198.51.100.10").status_code == 302
    browser.post("/accounts/logout/")
    for _ in range(6):  # somebody behind the same address floods the form, and alice's mailbox
        Client().post(RESET_URL, {"email": "alice@example.com"}, REMOTE_ADDR="198.51.100.10")
    sent = len(mailoutbox)
    response = browser.post(RESET_URL, {"email": "alice@example.com"}, REMOTE_ADDR="198.51.100.10")
    assert response.status_code == 302
    assert len(mailoutbox) == sent + 1


@pytest.mark.usefixtures("counter_store")
def test_a_reset_lets_the_owner_in_even_while_others_hold_the_username_locked(alice, mailoutbox, settings, clock):
    settings.LOGIN_THROTTLE_USERNAME_CAP = 5
    for n in range(5):
        sign_in(Client(), "alice", "wrong", ip=f"203.0.113.{n}")
    assert sign_in(Client(), "alice", "alice-password", ip="198.51.100.10").status_code == 429

    browser = Client()
    browser.post(RESET_URL, {"email": "alice@example.com"}, REMOTE_ADDR="198.51.100.10")
    reset_with(reset_link(mailoutbox[-1]), "reset passphrase 42", client=browser)
    for n in range(5):  # the guesser carries on
        sign_in(Client(), "alice", "wrong", ip=f"203.0.113.{n}")
    assert sign_in(browser, "alice", "reset passphrase 42", ip="198.51.100.10").status_code == 302
