"""scripts/find-python: finds a Python 3.10, or says clearly how to get one."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bot.settings import PROJECT_ROOT

SCRIPT = PROJECT_ROOT / "scripts" / "find-python"
SYSTEM_PYTHONS = [Path("/usr/bin/python3.10"), Path("/usr/local/bin/python3.10")]
no_system_python310 = pytest.mark.skipif(
    any(p.exists() for p in SYSTEM_PYTHONS), reason="this machine has a system python3.10"
)


def run(env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(SCRIPT)], env=env, capture_output=True, text=True)


def test_the_named_python_is_used_when_it_is_3_10(tmp_path):
    assert sys.version_info[:2] == (3, 10)
    result = run({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HELPLINE_PYTHON": sys.executable})
    assert result.returncode == 0
    assert result.stdout.strip() == sys.executable


@no_system_python310
def test_no_python_3_10_fails_with_a_clear_message(tmp_path):
    result = run({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Python 3.10 was not found" in result.stderr
    assert "HELPLINE_PYTHON" in result.stderr


@no_system_python310
def test_a_wrong_named_python_is_reported(tmp_path):
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    result = run({"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HELPLINE_PYTHON": str(fake)})
    assert result.returncode == 1
    assert f"HELPLINE_PYTHON={fake} is not a working Python 3.10" in result.stderr
