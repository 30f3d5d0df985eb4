"""Production configuration: real secrets required, HTTPS settings follow OAUTH_ISSUER.

Each case runs manage.py in a fresh process with only the given environment
(no DEBUG, no test runner), as a deployment would.
"""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet

ROOT = Path(__file__).resolve().parents[1]
PRODUCTION_SECRET = "a-production-secret-" + "k" * 40


@pytest.fixture
def production_env(tmp_path) -> dict[str, str]:
    return {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "SECRET_KEY": PRODUCTION_SECRET,
        "KEY_ENCRYPTION_KEYS": Fernet.generate_key().decode(),
        "OAUTH_ISSUER": "https://keys.example.com",
        "DATABASE_URL": f"sqlite:///{tmp_path}/db.sqlite3",
        "ENV_FILE": str(tmp_path / "no.env"),  # not a developer's .env (DEBUG=1)
    }


def manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )


def settings_of(env: dict[str, str], *names: str) -> dict:
    code = "import json; from django.conf import settings as s; print(json.dumps({n: getattr(s, n) for n in %r}))"
    result = manage(env, "shell", "-c", code % (names,))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_production_settings_pass_the_deploy_checks(production_env):
    result = manage(production_env, "check", "--deploy", "--fail-level", "WARNING")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SECRET_KEY", None),
        ("SECRET_KEY", "django-insecure-keygrant-development-only"),
        ("KEY_ENCRYPTION_KEYS", None),
        ("KEY_ENCRYPTION_KEYS", "ZGV2ZWxvcG1lbnQtb25seS1rZXlncmFudC1mZXJuZXQ="),
        ("OAUTH_ISSUER", None),
        ("OAUTH_ISSUER", "http://keys.example.com"),
        ("OAUTH_ISSUER", "https://keys.example.com/"),
    ],
)
def test_production_refuses_to_start_without_real_values(production_env, name, value):
    env = dict(production_env)
    if value is None:
        del env[name]
    else:
        env[name] = value
    result = manage(env, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and name in result.stderr


@pytest.mark.parametrize(
    "keys",
    [
        "not-a-fernet-key",
        "{good},c2hvcnQ=",  # the second is valid base64 but 5 bytes
        "{good},{truncated}",
        "!" * 44,
    ],
)
def test_an_invalid_key_encryption_key_is_refused_at_start_up(production_env, keys):
    """Issue #13 item 16: it used to pass `check` and fail only when the first key was created."""
    good = Fernet.generate_key().decode()
    keys = keys.format(good=good, truncated=good[:40])
    result = manage({**production_env, "KEY_ENCRYPTION_KEYS": keys}, "check")
    assert result.returncode != 0
    assert "ImproperlyConfigured" in result.stderr and "KEY_ENCRYPTION_KEYS" in result.stderr
    assert "is not a Fernet key" in result.stderr
    for key in keys.split(","):
        assert key not in result.stderr  # a secret is never printed


def test_https_settings_follow_an_https_issuer(production_env):
    values = settings_of(
        production_env,
        "DEBUG",
        "SECURE_SSL_REDIRECT",
        "SECURE_HSTS_SECONDS",
        "SESSION_COOKIE_SECURE",
        "CSRF_COOKIE_SECURE",
    )
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": True,
        "SECURE_HSTS_SECONDS": 31536000,
        "SESSION_COOKIE_SECURE": True,
        "CSRF_COOKIE_SECURE": True,
    }


def test_a_loopback_http_issuer_runs_with_debug_off(production_env):
    env = {**production_env, "OAUTH_ISSUER": "http://127.0.0.1:8000"}
    assert manage(env, "check", "--deploy", "--fail-level", "WARNING").returncode == 0
    values = settings_of(env, "DEBUG", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE", "OAUTH_ISSUER")
    assert values == {
        "DEBUG": False,
        "SECURE_SSL_REDIRECT": False,
        "SESSION_COOKIE_SECURE": False,
        "OAUTH_ISSUER": "http://127.0.0.1:8000",
    }


def test_the_wsgi_application_loads_with_production_settings(production_env):
    result = subprocess.run(
        [sys.executable, "-c", "from config.wsgi import application; print(type(application).__name__)"],
        cwd=ROOT,
        env=production_env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "WSGIHandler"


def test_the_database_defaults_to_a_sqlite_file(production_env):
    env = {k: v for k, v in production_env.items() if k != "DATABASE_URL"}
    databases = settings_of(env, "DATABASES")["DATABASES"]
    assert databases["default"]["ENGINE"] == "django.db.backends.sqlite3"
    assert databases["default"]["NAME"].endswith("db.sqlite3")


def test_a_dot_env_file_is_read_and_the_environment_wins(production_env, tmp_path):
    dot_env = tmp_path / "keygrant.env"
    dot_env.write_text("OAUTH_CODE_TTL_SECONDS=42\nOAUTH_ISSUER=https://from-the-file.example\n")
    env = {**production_env, "ENV_FILE": str(dot_env)}
    assert settings_of(env, "OAUTH_CODE_TTL_SECONDS", "OAUTH_ISSUER") == {
        "OAUTH_CODE_TTL_SECONDS": 42,
        "OAUTH_ISSUER": "https://keys.example.com",
    }


@pytest.mark.parametrize("value", ["some", "Staff", ""])
def test_an_unknown_second_factor_policy_is_refused_at_start_up(production_env, value):
    result = manage({**production_env, "TWO_FACTOR_REQUIRED": value}, "check")
    assert result.returncode != 0 and "TWO_FACTOR_REQUIRED must be none, staff or all" in result.stderr


def test_staff_must_have_a_second_factor_by_default_in_production(production_env):
    assert settings_of(production_env, "TWO_FACTOR_REQUIRED", "REAUTH_MAX_AGE_SECONDS") == {
        "TWO_FACTOR_REQUIRED": "staff",
        "REAUTH_MAX_AGE_SECONDS": 900,
    }
