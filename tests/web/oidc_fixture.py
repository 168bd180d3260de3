"""A real OpenID Connect provider for the sign-in tests: panva's ``oidc-provider`` (from
tests/js, installed by ``npm ci``), started once per test session with Node on a free loopback
port by ``tests/js/oidc_provider.mjs`` and stopped at the end.

The provider signs in, without a form, the test account named in the authorization request's
``login_hint``; ``Browser.authorize`` adds it, follows the provider's redirects as a browser
would and hands back the address the provider sends the browser to (our callback).
"""

from __future__ import annotations

import json
import os
import select
import shutil
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

import httpx
import pytest

ROOT = Path(__file__).resolve().parent.parent.parent
SCRIPT = ROOT / "tests" / "js" / "oidc_provider.mjs"
MODULES = ROOT / "tests" / "js" / "node_modules" / "oidc-provider"
#: What the tests' app calls itself (conftest's ``settings``).
BASE = "http://testserver"
CLIENT = {
    "client_id": "samhandling-test",
    "client_secret": "test-secret-that-is-long-enough-0123456789",
    "redirect_uri": f"{BASE}/logg-inn/callback",
    "post_logout_redirect_uri": f"{BASE}/logget-ut",
}
#: The provider's people, by subject: as Keycloak sends them (a verified address), an address
#: not vouched for, Entra ID's domain-verified address (``xms_edov``, no ``email_verified``), and
#: ID-porten's national identity number with no address at all.
ACCOUNTS = {
    "kari-sub": {"email": "Kari.Koordinator@kommune.example.org", "email_verified": True, "name": "Kari"},
    "ukjent-sub": {"email": "ukjent@kommune.example.org", "email_verified": True, "name": "Ukjent"},
    "lise-sub": {"email": "lise@kommune.example.org", "email_verified": False, "name": "Lise"},
    "entra-sub": {"email": "elin@kommune.example.org", "xms_edov": True, "name": "Elin"},
    "idporten-sub": {"pid": "01017012345", "name": "Per"},
}


@dataclass(frozen=True)
class Provider:
    issuer: str


@pytest.fixture(scope="session")
def oidc_provider(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Provider]:
    node = shutil.which("node")
    if node is None or not MODULES.exists():
        pytest.fail("the sign-in tests need Node and tests/js/node_modules: run `npm ci --prefix tests/js` "
                    "(python3 dev.py test does)")
    log = tmp_path_factory.mktemp("oidc") / "provider.log"
    env = {**os.environ, "OIDC_CLIENT": json.dumps(CLIENT), "OIDC_ACCOUNTS": json.dumps(ACCOUNTS)}
    with log.open("w") as errors:
        process = subprocess.Popen([node, str(SCRIPT)], cwd=SCRIPT.parent, env=env, stdout=subprocess.PIPE,
                                   stderr=errors, text=True)
    try:
        yield Provider(issuer=_issuer(process, log))
    finally:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


def _issuer(process: subprocess.Popen[str], log: Path) -> str:
    """The provider's first line, ``listening <issuer>``, within 30 seconds."""
    assert process.stdout is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        ready, _, _ = select.select([process.stdout], [], [], 0.2)
        if ready:
            line = process.stdout.readline()
            if line.startswith("listening "):
                return line.split()[1]
        if process.poll() is not None:
            break
    raise RuntimeError(f"oidc-provider did not start: {log.read_text()}")


class Browser:
    """The browser's side at the provider: its own cookies there, redirects followed until the
    provider sends the browser back to the service."""

    def __init__(self) -> None:
        self.http = httpx.AsyncClient(timeout=10)

    async def __aenter__(self) -> Browser:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.http.aclose()

    async def follow(self, url: str) -> httpx.Response:
        """GET ``url`` and the provider's redirects; stops at the first answer that is not a
        redirect within the provider (a redirect to the service is returned unfollowed)."""
        answer = await self.http.get(url)
        while answer.is_redirect and not answer.headers["location"].startswith(BASE):
            answer = await self.http.get(answer.url.join(answer.headers["location"]))
        return answer

    async def authorize(self, authorization_url: str, account: str | None) -> str:
        """The address the provider sends the browser back to, signed in as ``account``."""
        hint = "&" + urlencode({"login_hint": account}) if account else ""
        answer = await self.follow(authorization_url + hint)
        assert answer.is_redirect, answer.text
        return answer.headers["location"]


def local(url: str) -> str:
    """The service's address as a path with its query (what the test client takes)."""
    assert url.startswith(BASE + "/"), url
    return url.removeprefix(BASE)
