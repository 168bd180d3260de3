"""Settings of the channels beyond outgoing mail: the ORGANIZER mailbox read over IMAP
(``SAMHANDLING_IMAP_*``) or from a local folder, and SMS (``SAMHANDLING_SMS_*``). Read by
``coordination.settings``."""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path

from calendars.zone import clock_time
from notifications.ports import DisclosureLevel
from notifications.sms import SveveSettings

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
    "SMS_GATEWAY": "",
    "SMS_FOLDER": "./var/sms",
    "SMS_LEVEL_CAP": "logistics",
    "SMS_DAY_START": "08:00",
    "SMS_DAY_END": "20:00",
    "SMS_GATEWAY_URL": "https://sveve.no/SMS/SendMessage",
    "SMS_GATEWAY_USER": "",
    "SMS_GATEWAY_PASSWORD": "",
    "SMS_SENDER": "Moter",
    "SMS_REPORT_SECRET": "",
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


class SmsGatewayKind(enum.StrEnum):
    FOLDER = ""  # the embedded default: one file a message in SMS_FOLDER
    SVEVE = "sveve"


@dataclass(frozen=True, slots=True)
class SmsSettings:
    gateway: SmsGatewayKind = SmsGatewayKind.FOLDER
    folder: Path = Path("./var/sms")
    level_cap: DisclosureLevel = DisclosureLevel.LOGISTICS
    day_start: time = time(8, 0)
    day_end: time = time(20, 0)
    sveve: SveveSettings = field(default_factory=SveveSettings)
    #: The last part of the delivery report address given to Sveve (/sms/leveringsrapport/<secret>):
    #: the provider cannot sign its reports. Empty: no reports are taken.
    report_secret: str = field(default="", repr=False)


def read_sms(read: Callable[[str], str], prefix: str) -> SmsSettings:
    kind_text = read("SMS_GATEWAY").strip().lower()
    try:
        kind = SmsGatewayKind(kind_text)
    except ValueError:
        raise ValueError(f"{prefix}SMS_GATEWAY must be empty (a folder) or sveve, not {kind_text!r}") from None
    cap_text = read("SMS_LEVEL_CAP").strip().lower()
    if cap_text not in ("none", "logistics"):
        raise ValueError(f"{prefix}SMS_LEVEL_CAP must be none or logistics (SMS carry no more), not {cap_text!r}")
    try:
        start, end = clock_time(read("SMS_DAY_START")), clock_time(read("SMS_DAY_END"))
    except ValueError:
        raise ValueError(f"{prefix}SMS_DAY_START and {prefix}SMS_DAY_END must be clock times such as 08:00") from None
    if not start < end:
        raise ValueError(f"{prefix}SMS_DAY_START must be before {prefix}SMS_DAY_END")
    sveve = SveveSettings(url=read("SMS_GATEWAY_URL").strip(), user=read("SMS_GATEWAY_USER").strip(),
                          password=read("SMS_GATEWAY_PASSWORD"), sender=read("SMS_SENDER").strip() or "Moter")
    if kind is SmsGatewayKind.SVEVE and not (sveve.user and sveve.password):
        raise ValueError(f"{prefix}SMS_GATEWAY_USER and {prefix}SMS_GATEWAY_PASSWORD are needed with sveve")
    return SmsSettings(gateway=kind, folder=Path(read("SMS_FOLDER")), level_cap=DisclosureLevel(cap_text),
                       day_start=start, day_end=end, sveve=sveve, report_secret=read("SMS_REPORT_SECRET").strip())
