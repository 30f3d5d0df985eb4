"""The HAProxy configuration docs/operations.md shows is the one the multi-instance tests run, and it is valid."""

import re
import subprocess

import pytest

from tests.processes import HAPROXY_CONFIG, ROOT, haproxy_binary, need

pytestmark = pytest.mark.multi_instance


def test_the_documented_configuration_is_deploy_haproxy_cfg():
    doc = (ROOT / "docs" / "operations.md").read_text()
    [block] = re.findall(r"```haproxy\n(.*?)```", doc, re.DOTALL)
    assert block == HAPROXY_CONFIG.read_text()


def test_haproxy_accepts_the_configuration():
    binary = haproxy_binary()
    need(binary is not None, "HAProxy is not installed (bin/install-haproxy installs Debian's package)")
    env = {
        "KEYGRANT_BIND": "127.0.0.1:8080",
        "KEYGRANT_STATS_BIND": "127.0.0.1:8404",
        "KEYGRANT_APP1": "127.0.0.1:8001",
        "KEYGRANT_APP2": "127.0.0.1:8002",
    }
    result = subprocess.run(
        [binary, "-c", "-f", str(HAPROXY_CONFIG)], env=env, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "WARNING" not in result.stdout + result.stderr
