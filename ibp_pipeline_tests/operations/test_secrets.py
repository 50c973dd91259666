"""Secrets (OIDC client secrets, database passwords, dashboard users) live outside the repository: in the
environment, Streamlit's secrets file or the users file, all of which git ignores."""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from ibp_pipeline.config import PROJECT_ROOT

SECRET_FILES = ["dashboards/.streamlit/secrets.toml", "data/config/users.yaml", ".env"]


def _git(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["git", "-C", str(PROJECT_ROOT), *args], capture_output=True, text=True)


@pytest.fixture(scope="module")
def tracked() -> list[str]:
    if shutil.which("git") is None or _git("rev-parse", "--git-dir").returncode != 0:
        pytest.skip("not a git checkout")
    return _git("ls-files").stdout.splitlines()


def test_secret_files_are_ignored_and_never_tracked(tracked):
    for name in ("dashboards/.streamlit/secrets.toml", "data/config/users.yaml"):
        assert _git("check-ignore", "-q", name).returncode == 0, f"{name} is not git-ignored"
    assert not set(SECRET_FILES) & set(tracked)
    assert not [f for f in tracked if f.endswith(("secrets.toml", ".pem", ".key"))]


def test_no_tracked_configuration_holds_a_credential(tracked):
    """Configuration the project ships names environment variables, never values."""
    config = [f for f in tracked if f.endswith((".toml", ".yaml", ".yml", ".cfg", ".ini")) and "tests" not in f]
    assert "dashboards/.streamlit/config.toml" in config
    url_with_password = re.compile(r"\w+://[^\s:/@]+:[^\s@{}$]+@")
    # a value on the same line; `password:` followed by an `env:` reference (Dagster's yaml) is what we want
    secret_value = re.compile(r"(client_secret|cookie_secret|password)[ \t]*[:=][ \t]*['\"]?[^\s'\"{$<][^\s'\"]*",
                              re.IGNORECASE)
    for name in config:
        text = (PROJECT_ROOT / name).read_text(encoding="utf-8", errors="replace")
        assert not url_with_password.search(text), f"{name}: a URL with a password"
        assert not secret_value.search(text), f"{name}: {secret_value.search(text).group(0)}"
