"""Settings of the channels beyond outgoing mail: the ORGANIZER mailbox read over IMAP
(``SAMHANDLING_IMAP_*``) or from a local folder. Read by ``coordination.settings``."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

#: Every variable read here, with its default (merged into ``settings.ENVIRONMENT``).
CHANNEL_ENVIRONMENT: dict[str, str] = {
    "IMAP_HOST": "",
    "IMAP_PORT": "",
    "IMAP_SECURITY": "tls",
    "IMAP_USERNAME": "",
    "IMAP_PASSWORD": "",
    "IMAP_FOLDER": "INBOX",
    "INBOX_FOLDER": "./var/inbox",
    "INBOX_INTERVAL_SECONDS": "30",
}


class ImapSecurity(enum.StrEnum):
    TLS = "tls"  # implicit TLS, port 993
    STARTTLS = "starttls"  # port 143, upgraded
    NONE = "none"  # only for a server on this machine or a test server


_DEFAULT_PORT = {ImapSecurity.TLS: 993, ImapSecurity.STARTTLS: 143, ImapSecurity.NONE: 143}


@dataclass(frozen=True, slots=True)
class ImapSettings:
    """The ORGANIZER mailbox: the account the invitations are sent from, read for answers."""

    host: str
    port: int
    security: ImapSecurity = ImapSecurity.TLS
    username: str = ""
    password: str = field(default="", repr=False)
    folder: str = "INBOX"
    timeout: float = 30.0


def read_imap(read: Callable[[str], str], prefix: str) -> ImapSettings | None:
    """IMAP when a host is set; a bad value stops the start with a message naming it."""
    host = read("IMAP_HOST").strip()
    if not host:
        return None
    security_text = read("IMAP_SECURITY").strip().lower()
    try:
        security = ImapSecurity(security_text)
    except ValueError:
        raise ValueError(f"{prefix}IMAP_SECURITY must be tls, starttls or none, not {security_text!r}") from None
    port_text = read("IMAP_PORT").strip()
    try:
        port = int(port_text) if port_text else _DEFAULT_PORT[security]
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise ValueError(f"{prefix}IMAP_PORT must be a port number, not {port_text!r}")
    username = read("IMAP_USERNAME").strip()
    if not username:
        raise ValueError(f"{prefix}IMAP_USERNAME is needed with {prefix}IMAP_HOST")
    return ImapSettings(host=host, port=port, security=security, username=username,
                        password=read("IMAP_PASSWORD"), folder=read("IMAP_FOLDER").strip() or "INBOX")


def read_interval(text: str, name: str, prefix: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = 0.0
    if not 1 <= seconds <= 3600:
        raise ValueError(f"{prefix}{name} must be a number of seconds from 1 to 3600, not {text!r}")
    return seconds
