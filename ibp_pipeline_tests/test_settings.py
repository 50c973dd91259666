"""Every environment variable is read through ibp_pipeline/settings.py, registered there, and documented in
docs/configuration.md (written from the registry)."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

from ibp_pipeline import settings
from ibp_pipeline.config import PROJECT_ROOT

CODE = sorted((PROJECT_ROOT / "ibp_pipeline").rglob("*.py")) + sorted((PROJECT_ROOT / "dashboards").rglob("*.py"))
READ = re.compile(r"os\.getenv\(|os\.environ\.get\(|os\.environ\[[^\]]+\](?!\s*=[^=])")
# Reads that are not settings of ours, each named: the variable an analyst names on the command line, the whole
# environment copied for a rebuild's child process, and libpq's own variables shown beside a publish.
ALLOWED = {("cli.py", "os.environ.get(args.url_env"), ("postgres_publish.py", 'os.environ.get("PG')}


def test_the_environment_is_read_only_through_settings():
    found = []
    for path in CODE:
        if path.name == "settings.py":
            continue
        for n, line in enumerate(path.read_text().splitlines(), 1):
            for m in READ.finditer(line):
                if not any(path.name == f and line[m.start():].startswith(s) for f, s in ALLOWED):
                    found.append(f"{path.relative_to(PROJECT_ROOT)}:{n}: {line.strip()}")
    assert found == [], "read it with ibp_pipeline.settings.get:\n" + "\n".join(found)


def test_every_ibp_variable_in_the_code_is_a_registered_setting():
    names = {m for path in CODE for m in re.findall(r"\bIBP_[A-Z0-9_]*[A-Z0-9]\b", path.read_text())}
    assert names, "the scan found no IBP_ variable at all"
    assert sorted(names - set(settings.BY_NAME)) == []


def test_the_configuration_document_is_written_from_the_registry():
    doc = (PROJECT_ROOT / "docs" / "configuration.md").read_text()
    assert doc == settings.markdown(), "rewrite it: python -m ibp_pipeline.settings > docs/configuration.md"
    assert all(f"`{s.name}`" in doc for s in settings.SETTINGS)


def test_an_unregistered_or_empty_setting(monkeypatch):
    with pytest.raises(KeyError, match="not a registered setting"):
        settings.get("IBP_NOT_A_SETTING")
    monkeypatch.setenv("IBP_DRAWS", "  ")
    assert settings.get("IBP_DRAWS", "10000") == "10000"  # empty counts as not set
    monkeypatch.setenv("IBP_DATA_DIR", "/tmp/somewhere")
    assert settings.get_path("IBP_DATA_DIR", Path("x")) == Path("/tmp/somewhere")
