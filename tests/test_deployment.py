"""What can be checked of compose.yaml and the Dockerfile without a Docker engine."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

from coordination.settings import ENVIRONMENT, PREFIX, Settings

ROOT = Path(__file__).resolve().parent.parent


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
    return loaded


def test_compose_has_the_services_with_health_checks() -> None:
    services = compose()["services"]
    assert set(services) >= {"db", "mailpit", "migrate", "app", "proxy"}
    for name in ("db", "mailpit", "app"):
        assert "healthcheck" in services[name], name
    assert services["migrate"]["command"] == ["samhandling", "migrate"]
    assert services["app"]["command"] == ["samhandling", "serve"]
    assert services["app"]["deploy"]["replicas"] == 2
    assert services["app"]["depends_on"]["migrate"]["condition"] == "service_completed_successfully"


def test_compose_variables_are_ones_the_app_reads_and_parse() -> None:
    services = compose()["services"]
    environment = services["app"]["environment"]
    assert environment == services["migrate"]["environment"]
    unknown = [k for k in environment if k.removeprefix(PREFIX) not in ENVIRONMENT]
    assert unknown == []
    settings = Settings.from_env({k: str(v) for k, v in environment.items()})
    assert settings.database_url.startswith("postgresql+asyncpg://")
    assert settings.smtp is not None and settings.smtp.host == "mailpit"
    # The database, mail host and ports point at the compose services.
    db = services["db"]["environment"]
    assert f"{db['POSTGRES_USER']}:{db['POSTGRES_PASSWORD']}@db:5432/{db['POSTGRES_DB']}" in (
        settings.database_url)
    assert settings.port == 8000 and "8000:8000" in services["proxy"]["ports"]
    assert "app:8000" in services["proxy"]["command"]


def test_readme_documents_every_setting() -> None:
    readme = (ROOT / "README.md").read_text()
    missing = [name for name in ENVIRONMENT if PREFIX + name not in readme]
    assert missing == []


def test_dockerfile_installs_the_packages_and_runs_the_command() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    for package in ("coordination", "calendars", "notifications"):
        assert re.search(rf"COPY {package} ", dockerfile)
    assert 'CMD ["samhandling", "serve"]' in dockerfile
    assert "USER samhandling" in dockerfile
    # The app imports WeasyPrint at start: without Pango and the fonts the image would not run.
    dev = (ROOT / "dev.py").read_text()
    packages = re.search(r"PDF_PACKAGES = \((.*?)\)", dev)
    assert packages is not None
    names = re.findall(r'"([^"]+)"', packages.group(1))
    installed = dockerfile.split()
    assert names and all(name in installed for name in names)


def test_clock_start_sets_the_services_clock() -> None:
    from coordination.context import ServiceContext

    settings = Settings.from_env({"SAMHANDLING_CLOCK_START": "2027-01-04T10:00:00+01:00"})
    now = ServiceContext.create(settings).now()
    assert now.isoformat().startswith("2027-01-04T09:0")
    try:
        Settings.from_env({"SAMHANDLING_CLOCK_START": "2027-01-04T10:00:00"})
    except ValueError as error:
        assert "offset" in str(error)
    else:
        raise AssertionError("a naive instant was accepted")
