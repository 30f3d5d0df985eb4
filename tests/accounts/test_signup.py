"""Sign-up: open or closed by SIGNUP_ENABLED."""

import pytest
from django.test import Client

from accounts.models import User
from tests.accounts.conftest import LOGIN_URL

SIGNUP_URL = "/accounts/signup/"


def new_person(**overrides) -> dict[str, str]:
    data = {
        "username": "carol",
        "email": "carol@example.com",
        "password1": "correct horse battery staple",
        "password2": "correct horse battery staple",
    }
    data.update(overrides)
    return data


@pytest.fixture
def signup_open(settings):
    settings.SIGNUP_ENABLED = True


@pytest.fixture
def signup_closed(settings):
    settings.SIGNUP_ENABLED = False


def test_a_person_can_sign_up_and_is_signed_in(db, signup_open):
    client = Client()
    page = client.get(SIGNUP_URL)
    assert page.status_code == 200
    for name in ("username", "email", "password1", "password2"):
        assert f'<label for="id_{name}">' in page.content.decode()
    response = client.post(SIGNUP_URL, new_person())
    assert response.status_code == 302
    assert response["Location"] == "/"
    carol = User.objects.get(username="carol")
    assert carol.email == "carol@example.com"
    assert carol.check_password("correct horse battery staple")
    assert client.get("/keys/").status_code == 200


def test_sign_up_returns_to_a_path_on_this_site_only(db, signup_open):
    response = Client().post(SIGNUP_URL + "?next=/apps/", new_person(next="/apps/"))
    assert response["Location"] == "/apps/"
    response = Client().post(SIGNUP_URL, new_person(username="dave", next="//evil.example/"))
    assert response["Location"] == "/"


def test_sign_up_checks_the_password_and_the_username(alice, signup_open):
    weak = Client().post(SIGNUP_URL, new_person(password1="password", password2="password"))
    assert weak.status_code == 200
    assert "too common" in weak.content.decode()
    taken = Client().post(SIGNUP_URL, new_person(username="alice"))
    assert "already exists" in taken.content.decode()
    no_email = Client().post(SIGNUP_URL, new_person(email=""))
    assert "This field is required" in no_email.content.decode()
    assert not User.objects.filter(username="carol").exists()


def test_the_login_page_links_to_sign_up_when_it_is_open(db, signup_open):
    assert 'href="/accounts/signup/"' in Client().get(LOGIN_URL).content.decode()


def test_when_sign_up_is_closed_the_page_says_so_and_the_link_disappears(db, signup_closed):
    client = Client()
    page = client.get(SIGNUP_URL)
    assert page.status_code == 404
    assert "Sign-up is closed" in page.content.decode()
    assert client.post(SIGNUP_URL, new_person()).status_code == 404
    assert not User.objects.filter(username="carol").exists()
    assert "/accounts/signup/" not in client.get(LOGIN_URL).content.decode()


def test_passwords_are_hashed_with_argon2_outside_the_tests():
    import config.settings as project_settings

    assert project_settings.PASSWORD_HASHERS[0] == "django.contrib.auth.hashers.Argon2PasswordHasher"
