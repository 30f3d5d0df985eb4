"""The reference provider's Quick Start code, run unchanged in Chromium, works against Keygrant.

Its generatePKCE() base64-encodes the *text* of the random bytes
("12,250,...") rather than the bytes, so its verifiers are 84-170
characters long: longer than RFC 7636's 128. Keygrant accepts them
(docs/decisions.md); this test keeps that promise honest.
"""

import re

import pytest
from playwright.sync_api import expect

from tests.browser.flow import decide, key_option, log_in

pytestmark = pytest.mark.browser

# Copied from the Quick Start: only the provider URL and the hostnames differ.
QUICK_START_AUTHORIZE = """
async ([provider, clientId, redirectUri]) => {
  function generatePKCE() {
    const codeVerifier = btoa(crypto.getRandomValues(new Uint8Array(32))).replace(
      /[+/=]/g,
      (m) => ({ "+": "-", "/": "_", "=": "" }[m])
    );

    return crypto.subtle
      .digest("SHA-256", new TextEncoder().encode(codeVerifier))
      .then((hash) => ({
        codeVerifier,
        codeChallenge: btoa(String.fromCharCode(...new Uint8Array(hash))).replace(
          /[+/=]/g,
          (m) => ({ "+": "-", "/": "_", "=": "" }[m])
        ),
      }));
  }

  const { codeVerifier, codeChallenge } = await generatePKCE();
  localStorage.setItem("code_verifier", codeVerifier);

  const authUrl = new URL(provider + "/getKeys/authorize");
  authUrl.searchParams.set("client_id", clientId);
  authUrl.searchParams.set("redirect_uri", redirectUri);
  authUrl.searchParams.set("response_type", "code");
  authUrl.searchParams.set("scope", "key:read");
  authUrl.searchParams.set("code_challenge", codeChallenge);
  authUrl.searchParams.set("code_challenge_method", "S256");
  authUrl.searchParams.set("state", "random-state-value");

  return { verifierLength: codeVerifier.length, url: authUrl.toString() };
}
"""

QUICK_START_EXCHANGE = """
async ([provider, clientId, redirectUri]) => {
  const urlParams = new URLSearchParams(window.location.search);
  const code = urlParams.get("code");
  const codeVerifier = localStorage.getItem("code_verifier");

  const response = await fetch(provider + "/getKeys/token", {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code: code,
      client_id: clientId,
      redirect_uri: redirectUri,
      code_verifier: codeVerifier,
    }),
  });

  const { access_token } = await response.json();

  const me = await fetch(provider + "/v1/me", { headers: { "x-api-key": access_token } });
  return { status: response.status, meStatus: me.status, me: await me.json() };
}
"""


def test_the_quick_start_code_works_unchanged(page, provider, example_app, alice):
    redirect_uri = example_app.origin + "/quick-start-callback"
    page.goto(example_app.url)  # the app's origin, so localStorage and fetch() are the app's
    started = page.evaluate(QUICK_START_AUTHORIZE, [provider, "localhost", redirect_uri])
    assert started["verifierLength"] > 43

    page.goto(started["url"])
    log_in(page, alice)
    expect(page).to_have_url(re.compile(re.escape(provider) + r"/getKeys/authorize\?"))
    key_option(page, "new").check()
    decide(page, "allow")
    page.wait_for_url(redirect_uri + "?**")

    result = page.evaluate(QUICK_START_EXCHANGE, [provider, "localhost", redirect_uri])
    assert result["status"] == 200
    assert result["meStatus"] == 200
    assert result["me"]["user"]["username"] == alice.get_username()
