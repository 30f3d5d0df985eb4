"""The table of scenarios: what is measured, against which floor, with which target.

A ratio is Keygrant's rate divided by its floor's rate, both measured in the
same run, back to back, with the same connections (bench/floor.py). Targets
are the speed issue's goals; a row without a target is reported only.
"""

import json
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.load import raw_request

CONSENT_CLIENT = "app0.example.com"
TOKEN_WARM_UP = 200  # codes exchanged before the measured windows


class Inputs:
    """What the scenarios send: bench/seed.py's output (keys, codes, a signed-in session) as files for wrk."""

    def __init__(self, seed_dir: Path, *, codes_per_window: int) -> None:
        self.data = json.loads((seed_dir / "inputs.json").read_text())
        self.work_dir, self.codes_per_window = seed_dir, codes_per_window
        self._codes_used = 0

    def requests_file(self, name: str, requests: list[str]) -> str:
        path = self.work_dir / f"{name}.requests"
        path.write_text("\n".join(requests) + "\n")
        return str(path)

    def take_codes(self, count: int) -> list[dict]:
        """Codes not sent before: each code is exchanged once."""
        taken = self.data["codes"][self._codes_used : self._codes_used + count]
        self._codes_used += len(taken)
        return taken


def _keys(inputs: Inputs, pool: str, method: str, path: str) -> list[str]:
    return [raw_request(method, path, {"x-api-key": key}) for key in inputs.data[pool]]


def metadata(inputs: Inputs, cap: int) -> dict:
    request = raw_request("GET", "/.well-known/oauth-authorization-server")
    return {"script": "cycle", "requests_file": inputs.requests_file("metadata", [request]), "expect_status": 200}


def me_valid(inputs: Inputs, cap: int) -> dict:
    requests = _keys(inputs, "me_keys", "GET", "/v1/me")
    return {"script": "cycle", "requests_file": inputs.requests_file("me", requests), "expect_status": 200}


def me_unknown(inputs: Inputs, cap: int) -> dict:
    requests = _keys(inputs, "unknown_keys", "GET", "/v1/me")
    return {"script": "cycle", "requests_file": inputs.requests_file("unknown", requests), "expect_status": 401}


def token(inputs: Inputs, cap: int) -> dict:
    bodies = [urllib.parse.urlencode(code) for code in inputs.take_codes(min(cap, inputs.codes_per_window))]
    requests = [raw_request("POST", "/getKeys/token", body=body) for body in bodies]
    return {
        "script": "cycle",
        "requests_file": inputs.requests_file("token", requests),
        "expect_status": 200,
        "once": True,
        "cap": len(requests),
    }


def consent_path() -> str:
    query = {
        "client_id": CONSENT_CLIENT,
        "redirect_uri": f"https://{CONSENT_CLIENT}/callback",
        "response_type": "code",
        "scope": "key:read",
        # Any valid S256 challenge: these codes are never exchanged.
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "state": "bench",
    }
    return "/getKeys/authorize?" + urllib.parse.urlencode(query)


def consent(inputs: Inputs, cap: int) -> dict:
    return {
        "script": "consent",
        "cookie": inputs.data["cookie"],
        "consent_path": consent_path(),
        "key_choice": inputs.data["consent_key_id"],
        "approved_prefix": f"https://{CONSENT_CLIENT}/callback?code=",
    }


def signin(inputs: Inputs, cap: int) -> dict:
    return {"script": "signin", "username": inputs.data["username"], "password": inputs.data["password"]}


def floor_json(inputs: Inputs, cap: int) -> dict:
    request = raw_request("GET", "/bench/floor/json")
    return {"script": "cycle", "requests_file": inputs.requests_file("floor-json", [request]), "expect_status": 200}


def floor_select(inputs: Inputs, cap: int) -> dict:
    requests = _keys(inputs, "floor_keys", "GET", "/bench/floor/select")
    return {"script": "cycle", "requests_file": inputs.requests_file("floor-select", requests), "expect_status": 200}


def floor_select_update(inputs: Inputs, cap: int) -> dict:
    requests = _keys(inputs, "floor_keys", "POST", "/bench/floor/select-update")
    return {"script": "cycle", "requests_file": inputs.requests_file("floor-write", requests), "expect_status": 200}


FLOORS: dict[str, Callable[[Inputs, int], dict]] = {
    "constant JSON": floor_json,
    "one SELECT": floor_select,
    "SELECT + UPDATE": floor_select_update,
}


@dataclass(frozen=True)
class Scenario:
    name: str
    what: str
    prepare: Callable[[Inputs, int], dict]  # (inputs, request cap) -> wrk script and its parameters
    floor: str | None
    target: float | None  # minimum ratio to the floor
    connections: int = 4  # two per worker: a request waits in the backlog while one is served
    # Unmeasured requests first: enough to use every key of a pool once, so that
    # /v1/me's once-a-minute last_used_at write (and the floor's first UPDATE
    # of a row) does not make the first measured round differ from the others.
    warm_up: int = 2500


SCENARIOS = [
    Scenario("metadata", "GET /.well-known/oauth-authorization-server", metadata, "constant JSON", 0.95),
    Scenario("me", "GET /v1/me, a valid key (cycling through many)", me_valid, "one SELECT", 0.9),
    Scenario("me-unknown", "GET /v1/me, an unknown well-formed key", me_unknown, "one SELECT", None),
    Scenario("token", "POST /getKeys/token, a fresh code each", token, "SELECT + UPDATE", 0.9, warm_up=TOKEN_WARM_UP),
    # Two flows at once in one signed-in session: one connection each.
    Scenario(
        "consent", "GET consent page + POST Allow, 2 flows in one session", consent, "SELECT + UPDATE", 0.3, 2, 200
    ),
]
SIGNIN = Scenario("signin", "GET login form + POST username/password (Argon2)", signin, None, None, 2, 0)
