"""A person at a browser, played over HTTP: logs in to Keygrant and answers the consent page
(of an authorization request, or of a device that showed them a code)."""

import re
from urllib.parse import parse_qs, urljoin, urlsplit

import httpx

HTTP_TIMEOUT = httpx.Timeout(10.0)


def _hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert match, f"the page has a hidden {name!r} field"
    return match.group(1)


def redirect_query(location: str) -> dict[str, str]:
    """The single-valued query parameters of a redirect back to the client."""
    return {name: values[0] for name, values in parse_qs(urlsplit(location).query).items()}


class Browser:
    """One person's browser session at Keygrant (cookies kept, redirects not followed)."""

    def __init__(self, issuer: str, *, username: str, password: str) -> None:
        self.issuer = issuer
        self.username = username
        self.password = password
        self.http = httpx.Client(timeout=HTTP_TIMEOUT, follow_redirects=False)
        self.consent_pages: list[str] = []

    def close(self) -> None:
        self.http.close()

    def approve(self, authorize_url: str, *, key: str = "new") -> str:
        """Open the authorization URL, log in if asked, Allow; returns the redirect to the client."""
        return self._decide(authorize_url, decision="allow", key=key)

    def deny(self, authorize_url: str) -> str:
        return self._decide(authorize_url, decision="deny", key="new")

    def _decide(self, authorize_url: str, *, decision: str, key: str) -> str:
        page = self._consent_page(authorize_url)
        response = self.http.post(
            f"{self.issuer}/getKeys/authorize",
            data={
                "csrfmiddlewaretoken": _hidden(page, "csrfmiddlewaretoken"),
                "request": _hidden(page, "request"),
                "key": key,
                "decision": decision,
            },
        )
        assert response.status_code in (302, 303), (response.status_code, response.text[:500])
        return response.headers["Location"]

    def _consent_page(self, authorize_url: str) -> str:
        page = self._signed_in_get(authorize_url)
        self.consent_pages.append(page)
        return page

    # --- The device flow: the person reads a code off a terminal ---------------------------

    def approve_device(self, *, complete_uri: str | None = None, user_code: str | None = None, key: str = "new") -> str:
        """Follow verification_uri_complete, or type the user code on /getKeys/device; Allow.

        Returns the result page (the device gets the key on its next poll).
        """
        return self._decide_device(self._device_consent_page(complete_uri, user_code), decision="allow", key=key)

    def deny_device(self, *, complete_uri: str | None = None, user_code: str | None = None) -> str:
        return self._decide_device(self._device_consent_page(complete_uri, user_code), decision="deny", key="new")

    def _device_consent_page(self, complete_uri: str | None, user_code: str | None) -> str:
        if complete_uri is not None:
            page = self._signed_in_get(complete_uri)
        else:
            entry = self._signed_in_get(f"{self.issuer}/getKeys/device")
            response = self.http.post(
                f"{self.issuer}/getKeys/device",
                data={"csrfmiddlewaretoken": _hidden(entry, "csrfmiddlewaretoken"), "user_code": user_code},
            )
            assert response.status_code == 200, (response.status_code, response.text[:500])
            page = response.text
        assert 'data-testid="device-notice"' in page, "the device's consent page warns the person"
        self.consent_pages.append(page)
        return page

    def _decide_device(self, page: str, *, decision: str, key: str) -> str:
        response = self.http.post(
            f"{self.issuer}/getKeys/device",
            data={
                "csrfmiddlewaretoken": _hidden(page, "csrfmiddlewaretoken"),
                "request": _hidden(page, "request"),
                "key": key,
                "decision": decision,
            },
        )
        assert response.status_code == 200, (response.status_code, response.text[:500])
        assert 'data-testid="device-result"' in response.text
        return response.text

    def _signed_in_get(self, url: str) -> str:
        """GET a page that needs a signed-in person, logging in when sent to the login page."""
        response = self.http.get(url)
        if response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/accounts/login/":
            self._log_in(urljoin(self.issuer, response.headers["Location"]))
            response = self.http.get(url)
        assert response.status_code == 200, (response.status_code, response.text[:500])
        return response.text

    def _log_in(self, login_url: str) -> None:
        page = self.http.get(login_url)
        assert page.status_code == 200, page.status_code
        response = self.http.post(
            login_url,
            data={
                "csrfmiddlewaretoken": _hidden(page.text, "csrfmiddlewaretoken"),
                "username": self.username,
                "password": self.password,
                "next": redirect_query(login_url)["next"],
            },
        )
        assert response.status_code == 302, ("login failed", response.status_code, response.text[:500])
