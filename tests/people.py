"""People and apps over real HTTP, for the tests that run Keygrant under gunicorn (tests/faults, tests/multi_instance).

A `Person` signs in with the login form, answers the consent page, and plays
the app that redeems the code and calls /v1/me. Each step talks to whichever
base URL it is given (the load balancer, or one instance directly), and
returns the response; nothing follows redirects.
"""

import base64
import hashlib
import re
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx

CLIENT_ID = "yourapp.com"
REDIRECT_URI = "https://yourapp.com/callback"
# Bounded: a request that takes longer than this is a failure of the test, not a wait.
TIMEOUT = httpx.Timeout(15.0)
# The apps' HTTP client (token requests, /v1/me): no cookies are involved, and one pooled
# client is thread-safe and spares each request building its own (TLS context included).
APP = httpx.Client(timeout=TIMEOUT, follow_redirects=False, limits=httpx.Limits(max_connections=100))


def pkce_pair() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    challenge = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
    return verifier, challenge


def hidden(html: str, name: str) -> str:
    match = re.search(rf'name="{re.escape(name)}" value="([^"]*)"', html)
    assert match, f"the page has a hidden {name!r} field"
    return match.group(1)


class Unexpected(Exception):
    """A step got an answer it should never get."""


@dataclass
class Consent:
    code: str
    verifier: str


@dataclass
class Person:
    base: str  # where the browser goes: the load balancer, or one instance
    username: str
    password: str
    http: httpx.Client = field(default_factory=lambda: httpx.Client(timeout=TIMEOUT, follow_redirects=False))

    def close(self) -> None:
        self.http.close()

    def sign_in(self, *, password: str | None = None, base: str | None = None) -> httpx.Response:
        """The login form: a 302 when the password is right, the form again (200) when it is not."""
        url = f"{base or self.base}/accounts/login/"
        page = self.http.get(url)
        if page.status_code != 200:
            return page
        return self.http.post(
            url,
            data={
                "csrfmiddlewaretoken": hidden(page.text, "csrfmiddlewaretoken"),
                "username": self.username,
                "password": self.password if password is None else password,
            },
        )

    def consent_page(self, *, challenge: str, base: str | None = None) -> httpx.Response:
        params = {
            "client_id": CLIENT_ID,
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": "key:read",
            "code_challenge": challenge,
            "code_challenge_method": "S256",
            "state": "s",
        }
        return self.http.get(f"{base or self.base}/getKeys/authorize?{urlencode(params)}")

    def decide(self, page: httpx.Response, *, base: str | None = None) -> httpx.Response:
        return self.http.post(
            f"{base or self.base}/getKeys/authorize",
            data={
                "csrfmiddlewaretoken": hidden(page.text, "csrfmiddlewaretoken"),
                "request": hidden(page.text, "request"),
                "key": "new",
                "decision": "allow",
            },
        )

    def consent(self, *, base: str | None = None) -> Consent:
        """Authorization request, consent page, Allow: the code the app receives (the person is signed in)."""
        verifier, challenge = pkce_pair()
        page = self.consent_page(challenge=challenge, base=base)
        if page.status_code != 200:
            raise Unexpected(f"consent page: {page.status_code} {page.text[:300]}")
        decision = self.decide(page, base=base)
        if decision.status_code not in (302, 303):
            raise Unexpected(f"decision: {decision.status_code} {decision.text[:300]}")
        return Consent(code=code_of(decision.headers["Location"]), verifier=verifier)

    def redeem(self, consent: Consent, *, base: str | None = None, verifier: str | None = None) -> httpx.Response:
        """The app's token request (the app's own HTTP client, not the person's browser)."""
        return APP.post(
            f"{base or self.base}/getKeys/token",
            data={
                "grant_type": "authorization_code",
                "code": consent.code,
                "client_id": CLIENT_ID,
                "redirect_uri": REDIRECT_URI,
                "code_verifier": consent.verifier if verifier is None else verifier,
            },
        )


def code_of(location: str) -> str:
    query = parse_qs(urlsplit(location).query)
    assert "code" in query, f"the redirect carries a code: {location[:200]}"
    return query["code"][0]


def me(base: str, key: str) -> httpx.Response:
    return APP.get(f"{base}/v1/me", headers={"x-api-key": key})


def timed(call, *args, **kwargs) -> tuple[httpx.Response, float]:
    start = time.monotonic()
    response = call(*args, **kwargs)
    return response, time.monotonic() - start


# --- Load: several people running full flows at once, every request recorded -----------------------


@dataclass
class Record:
    step: str  # "sign-in", "consent page", "decision", "token", "me"
    status: int  # 0: no HTTP answer at all (connection reset, timeout)
    start: float  # time.monotonic()
    end: float
    retry_after: str | None = None
    json_error: str | None = None


@dataclass
class Flows:
    """People signing in once, then authorizing the app, redeeming the code and calling /v1/me, in a loop.

    Bounded: new flows start for `seconds`, at most `max_flows` in all, and a
    flow in progress may finish (retrying) for `grace` seconds more. With
    `retry_503`, a step answered 503 is repeated after a short pause, as a
    client that reads Retry-After would (shortened here to keep the test short).
    """

    base: str
    people: list[Person]
    seconds: float
    max_flows: int
    retry_503: bool = False
    grace: float = 15.0
    records: list[Record] = field(default_factory=list)
    keys: list[str] = field(default_factory=list)  # every key a 200 from the token endpoint handed out
    abandoned: list[str] = field(default_factory=list)  # flows cut short, and why

    def run(self) -> None:
        import threading

        self._lock = threading.Lock()
        self._started = 0
        self._start = time.monotonic()
        threads = [threading.Thread(target=self._person, args=(p,), daemon=True) for p in self.people]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=self.seconds + self.grace + 30)
        assert not any(t.is_alive() for t in threads), "a load thread did not finish in time"

    def _call(self, step: str, send) -> httpx.Response | None:
        while True:
            start = time.monotonic()
            try:
                response = send()
            except httpx.HTTPError:
                response = None
            end = time.monotonic()
            record = Record(step, response.status_code if response is not None else 0, start, end)
            if response is not None and response.status_code >= 500:
                record.retry_after = response.headers.get("Retry-After")
                if response.headers.get("Content-Type", "").startswith("application/json"):
                    record.json_error = response.json().get("error")
            with self._lock:
                self.records.append(record)
            if record.status == 503 and self.retry_503 and end < self._start + self.seconds + self.grace:
                time.sleep(0.2)
                continue
            return response

    def _more(self) -> bool:
        with self._lock:
            if time.monotonic() - self._start >= self.seconds or self._started >= self.max_flows:
                return False
            self._started += 1
            return True

    def _person(self, person: Person) -> None:
        signed_in = self._call("sign-in", person.sign_in)
        if signed_in is None or signed_in.status_code != 302:
            self.abandoned.append(f"{person.username} could not sign in")
            return
        while self._more():
            outcome = self._flow(person)
            if outcome is not None:
                with self._lock:
                    self.abandoned.append(outcome)

    def _flow(self, person: Person) -> str | None:
        verifier, challenge = pkce_pair()
        page = self._call("consent page", lambda: person.consent_page(challenge=challenge))
        if page is None or page.status_code != 200:
            return f"consent page: {page.status_code if page is not None else 'no answer'}"
        decision = self._call("decision", lambda: person.decide(page))
        if decision is None or decision.status_code not in (302, 303):
            return f"decision: {decision.status_code if decision is not None else 'no answer'}"
        consent = Consent(code=code_of(decision.headers["Location"]), verifier=verifier)
        token = self._call("token", lambda: person.redeem(consent))
        if token is None or token.status_code != 200:
            return f"token: {token.status_code if token is not None else 'no answer'}"
        key = token.json()["access_token"]
        with self._lock:
            self.keys.append(key)
        answer = self._call("me", lambda: me(self.base, key))
        if answer is None or answer.status_code != 200:
            return f"me: {answer.status_code if answer is not None else 'no answer'}"
        return None

    def statuses(self, *, since: float = 0.0) -> dict[int, int]:
        """How many requests that started after `since` got each status."""
        counts: dict[int, int] = {}
        for record in self.records:
            if record.start >= since:
                counts[record.status] = counts.get(record.status, 0) + 1
        return counts
