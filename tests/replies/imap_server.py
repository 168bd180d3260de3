"""A Dovecot IMAP server of the test's own: Debian's ``dovecot-imapd`` (installed by dev.py),
configured in a temporary folder, on a free port, as an unprivileged process (as root, as
the ``dovecot`` user the package creates), with one passwd-file user. Messages are delivered
by IMAP APPEND, as a mail server's delivery would leave them."""

from __future__ import annotations

import contextlib
import grp
import imaplib
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from smtp_server import free_port

DOVECOT = Path("/usr/sbin/dovecot")
USERNAME = "samhandling"
PASSWORD = "imap-test-password"

CONFIG = """\
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
protocols = imap
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
default_internal_user = {user}
default_internal_group = {group}
default_login_user = {user}
mail_location = maildir:{root}/mail/%u
first_valid_uid = 1
first_valid_gid = 1
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/passwd
}}
userdb {{
  driver = static
  args = uid={user} gid={group} home={root}/home/%u
}}
service imap-login {{
  chroot =
  inet_listener imap {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener imaps {{
    port = 0
  }}
}}
service anvil {{
  chroot =
}}
"""


class Dovecot:
    def __init__(self) -> None:
        if not DOVECOT.exists():
            raise AssertionError("Dovecot is missing: `python3 dev.py test` installs Debian's dovecot-imapd "
                                 "(as root), or install it with `sudo apt-get install dovecot-imapd`")
        self.root = Path(tempfile.mkdtemp(prefix="samhandling-imap-"))
        self.port = free_port()
        as_root = os.geteuid() == 0
        self.user = "dovecot" if as_root else pwd.getpwuid(os.geteuid()).pw_name
        self.group = "dovecot" if as_root else grp.getgrgid(os.getegid()).gr_name
        self._process: subprocess.Popen[bytes] | None = None
        for folder in ("run", "state", "mail", "home"):
            (self.root / folder).mkdir()
        (self.root / "dovecot.conf").write_text(CONFIG.format(root=self.root, user=self.user, group=self.group,
                                                              port=self.port))
        (self.root / "passwd").write_text(f"{USERNAME}:{{PLAIN}}{PASSWORD}\n")
        if as_root:
            for path in [self.root, *self.root.rglob("*")]:
                shutil.chown(path, self.user, self.group)

    def start(self) -> Dovecot:
        command = [str(DOVECOT), "-F", "-c", str(self.root / "dovecot.conf")]
        if os.geteuid() == 0:
            command = ["runuser", "-u", self.user, "--", *command]
        self._process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                imaplib.IMAP4("127.0.0.1", self.port, timeout=2).logout()
                return self
            if self._process.poll() is not None:
                break
            time.sleep(0.05)
        raise AssertionError(f"Dovecot did not start: {self.log()}")

    def append(self, raw: bytes, folder: str = "INBOX") -> None:
        """Deliver one message into the mailbox."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        try:
            client.login(USERNAME, PASSWORD)
            status, detail = client.append(folder, None, None, raw)
            assert status == "OK", detail
        finally:
            client.logout()

    def keywords(self, folder: str = "INBOX") -> list[bytes]:
        """Each message's flags, in order."""
        client = imaplib.IMAP4("127.0.0.1", self.port, timeout=5)
        try:
            client.login(USERNAME, PASSWORD)
            client.select(folder, readonly=True)
            _, data = client.fetch("1:*", "(FLAGS)")
            return [item for item in data if isinstance(item, bytes)]
        finally:
            client.logout()

    def log(self) -> str:
        path = self.root / "dovecot.log"
        return path.read_text(errors="replace")[-2000:] if path.exists() else ""

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._process.wait(timeout=10)
            if self._process.poll() is None:
                self._process.kill()
                self._process.wait(timeout=5)
        shutil.rmtree(self.root, ignore_errors=True)
