"""A person at a browser, played over HTTP: logs in to Keygrant and answers the consent page."""

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
        response = self.http.get(authorize_url)
        if response.status_code == 302 and urlsplit(response.headers["Location"]).path == "/accounts/login/":
            self._log_in(urljoin(self.issuer, response.headers["Location"]))
            response = self.http.get(authorize_url)
        assert response.status_code == 200, (response.status_code, response.text[:500])
        self.consent_pages.append(response.text)
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
