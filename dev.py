#!/usr/bin/env python3
"""The two commands of the quick start, needing nothing but Python 3.11+:

    python3 dev.py demo    # start the service with a demo case (embedded SQLite, mail to ./var/mail)
    python3 dev.py test    # lint, type-check and run the whole test suite (SQLite and PostgreSQL)

Both create ./.venv on first use and install the project into it; they reinstall when
pyproject.toml changes.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")
STAMP = VENV / ".samhandling-installed"
JS = ROOT / "tests" / "js"
CHROMIUM = Path(os.environ.get("SAMHANDLING_CHROMIUM", "/usr/bin/chromium"))
DOVECOT = Path("/usr/sbin/dovecot")


def run(*args: str | Path, **kwargs: object) -> None:
    print("+", " ".join(str(a) for a in args), flush=True)
    subprocess.run([str(a) for a in args], check=True, cwd=ROOT, **kwargs)  # type: ignore[call-overload]


def ensure_venv(extras: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 (users may run it with an older python3)
        sys.exit("Samhandling needs Python 3.11 or newer")
    wanted = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + extras.encode()).hexdigest()
    if STAMP.exists() and STAMP.read_text() == wanted:
        return
    if not (BIN / "python").exists():
        print(f"creating {VENV}", flush=True)
        venv.EnvBuilder(with_pip=True).create(VENV)
    run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", f".{extras}")
    STAMP.write_text(wanted)


def ensure_node_modules() -> None:
    """ical.js (Thunderbird's parser) checks our feeds; playwright-core and axe-core drive the
    browser tests; oidc-provider is the identity provider of the sign-in tests. They come from
    npm via the lock file."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is needed for the ical.js checks: install Node.js 18+ and npm")
    lock = JS / "package-lock.json"
    stamp = JS / "node_modules" / ".samhandling-installed"
    wanted = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == wanted:
        return
    run(npm, "ci", "--prefix", JS, "--no-audit", "--no-fund")
    stamp.write_text(wanted)


def apt_install(*packages: str) -> bool:
    """Install Debian packages when we may (as root, as in CI); False when we may not."""
    apt = shutil.which("apt-get")
    if apt is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(apt, "update", "-qq", env=env)
    run(apt, "install", "-y", "-qq", "--no-install-recommends", *packages, env=env)
    return True


def ensure_chromium() -> None:
    """The browser tests drive Debian's Chromium: as root (as in CI) we install it from apt;
    otherwise we say how. In CI (``CI`` set) a missing browser stops the run here."""
    if CHROMIUM.exists():
        return
    if apt_install("chromium") and CHROMIUM.exists():
        return
    message = (f"Chromium for the browser tests is missing at {CHROMIUM}: install Debian's package with "
               "`sudo apt-get install --no-install-recommends chromium`")
    if os.environ.get("CI"):
        sys.exit(message)
    print(f"{message}; until then the browser tests are skipped", file=sys.stderr, flush=True)


def ensure_dovecot() -> None:
    """The reply tests read a real IMAP server: Debian's Dovecot, which they start themselves
    (its own configuration, an unprivileged process). As root (as in CI) we install it from apt;
    otherwise we say how. Nothing is started here: the package's own service stays off."""
    if DOVECOT.exists():
        return
    if apt_install("dovecot-imapd") and DOVECOT.exists():
        return
    sys.exit(f"Dovecot for the IMAP tests is missing at {DOVECOT}: install Debian's package with "
             "`sudo apt-get install --no-install-recommends dovecot-imapd`")


#: What WeasyPrint needs to render the case record as PDF/A: Pango, and the DejaVu fonts it embeds.
PDF_PACKAGES = ("libpango-1.0-0", "libpangoft2-1.0-0", "fonts-dejavu-core")
DEJAVU = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")


def ensure_pdf_libraries() -> None:
    """The case record is a PDF made by WeasyPrint, which needs Debian's Pango and a font to
    embed (DejaVu). As root (as in CI) we install them from apt; otherwise we say how."""
    import ctypes.util

    def present() -> bool:
        return all(ctypes.util.find_library(name) for name in ("pango-1.0", "pangoft2-1.0")) and DEJAVU.exists()

    if present():
        return
    if apt_install(*PDF_PACKAGES) and present():
        return
    sys.exit("Pango and the DejaVu fonts for the case record's PDF are missing: install Debian's packages with "
             f"`sudo apt-get install --no-install-recommends {' '.join(PDF_PACKAGES)}`")


def demo(args: list[str]) -> int:
    ensure_venv("")
    ensure_pdf_libraries()
    os.execv(BIN / "samhandling", [str(BIN / "samhandling"), "serve", "--demo", *args])


def test(args: list[str]) -> int:
    ensure_venv("[test]")
    if JS.exists():
        ensure_node_modules()
    ensure_chromium()
    ensure_dovecot()
    ensure_pdf_libraries()
    run(BIN / "ruff", "check", ".")
    run(BIN / "mypy")
    result = subprocess.run([str(BIN / "pytest"), *args], cwd=ROOT)
    if result.returncode == 5:
        print("pytest collected no tests: that is a failure here", file=sys.stderr)
        return 1
    return result.returncode


def main() -> int:
    commands = {"demo": demo, "test": test}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        print(__doc__)
        return 2
    return commands[sys.argv[1]](sys.argv[2:])


if __name__ == "__main__":
    raise SystemExit(main())
