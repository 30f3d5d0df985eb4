"""The consent form posts with "Origin: null" (no-referrer) and is still CSRF-proof."""

import pytest
from django.test import Client

from tests.conftest import authorize_params, authorize_url, consent_request_id, csrf_token_of


@pytest.fixture
def browser(alice) -> Client:
    client = Client(enforce_csrf_checks=True)
    client.force_login(alice)
    return client


def consent_form(browser: Client, pkce) -> dict[str, str]:
    page = browser.get(authorize_url(authorize_params(pkce)))
    token = csrf_token_of(page)
    return {"csrfmiddlewaretoken": token, "request": consent_request_id(page), "decision": "allow", "key": "new"}


def test_a_browser_posting_with_a_null_origin_and_no_referer_is_accepted(browser, pkce_pair):
    # What Chromium sends under Referrer-Policy: no-referrer.
    form = consent_form(browser, pkce_pair)
    response = browser.post(
        "/getKeys/authorize", form, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE="same-origin", secure=True
    )
    assert response.status_code == 302
    assert "code=" in response["Location"]


def test_the_csrf_token_is_still_required_with_a_null_origin(browser, pkce_pair):
    form = consent_form(browser, pkce_pair)
    del form["csrfmiddlewaretoken"]
    response = browser.post("/getKeys/authorize", form, HTTP_ORIGIN="null")
    assert response.status_code == 403


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_cross_site_posts_are_refused_even_with_a_token(browser, pkce_pair, site):
    form = consent_form(browser, pkce_pair)
    response = browser.post("/getKeys/authorize", form, HTTP_ORIGIN="null", HTTP_SEC_FETCH_SITE=site)
    assert response.status_code == 403


def test_a_foreign_origin_is_refused(browser, pkce_pair):
    form = consent_form(browser, pkce_pair)
    response = browser.post("/getKeys/authorize", form, HTTP_ORIGIN="https://evil.example")
    assert response.status_code == 403


def test_the_decision_redirect_also_sends_no_referrer(browser, pkce_pair):
    response = browser.post("/getKeys/authorize", consent_form(browser, pkce_pair))
    assert response["Referrer-Policy"] == "no-referrer"


def test_the_rest_of_the_site_sends_no_referrer_to_other_origins(db):
    assert Client().get("/accounts/login/")["Referrer-Policy"] == "same-origin"
