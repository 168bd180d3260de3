"""Settings read from the environment (``SAMHANDLING_*``).

The embedded default needs none of them: SQLite in ``./var`` and mail written as
``.eml`` files to ``./var/mail``.
"""

from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from urllib.parse import urlsplit

from coordination.channel_settings import (
    CHANNEL_ENVIRONMENT,
    ImapSettings,
    SmsSettings,
    read_imap,
    read_interval,
    read_sms,
)
from coordination.levels import Level
from coordination.logs import LogFormat
from notifications.transport import SmtpSecurity, SmtpSettings

PREFIX = "SAMHANDLING_"

#: Every variable the app reads, with its default; compose.yaml and the README are checked
#: against this list by the tests.
ENVIRONMENT: dict[str, str] = {
    "DATABASE_URL": "sqlite+aiosqlite:///./var/samhandling.db",
    "PUBLIC_BASE_URL": "http://127.0.0.1:8000",
    "HOST": "127.0.0.1",
    "PORT": "8000",
    "TRUSTED_PROXIES": "",
    "TIMEZONE": "Europe/Oslo",
    "SMTP_HOST": "",
    "SMTP_PORT": "25",
    "SMTP_SECURITY": "none",
    "SMTP_USERNAME": "",
    "SMTP_PASSWORD": "",
    "SMTP_TIMEOUT_SECONDS": "20",
    "SMTP_MESSAGES_PER_CONNECTION": "100",
    "MAIL_FROM": "noreply@samhandling.invalid",
    "MAIL_FROM_NAME": "Møteinnkalling",
    "MAIL_FOLDER": "./var/mail",
    "LINK_SECRET": "",
    "EMAIL_LEVEL_CAP": "logistics",
    "DISPATCHER_ENABLED": "true",
    "DISPATCH_INTERVAL_SECONDS": "5",
    "DISPATCH_LEASE_SECONDS": "300",
    "DISPATCH_IN_FLIGHT": "8",
    "MAX_BODY_BYTES": "65536",
    "SESSION_IDLE_MINUTES": "30",
    "SESSION_MAX_HOURS": "10",
    "LOG_LEVEL": "INFO",
    "LOG_FORMAT": "text",
    "METRICS_TOKEN": "",
    "CLOCK_START": "",
    "RETENTION_DAYS": "90",
    "OIDC_ISSUER": "",
    "OIDC_CLIENT_ID": "",
    "OIDC_CLIENT_SECRET": "",
    "OIDC_SCOPES": "openid email profile",
    **CHANNEL_ENVIRONMENT,
}


def _read(name: str, env: dict[str, str]) -> str:
    return env.get(PREFIX + name, ENVIRONMENT[name])


def _bool(text: str, name: str) -> bool:
    lowered = text.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off", ""}:
        return False
    raise ValueError(f"{PREFIX}{name} must be true or false, not {text!r}")


def _lease(text: str) -> float:
    seconds = float(text)
    if seconds < 2:
        raise ValueError(f"{PREFIX}DISPATCH_LEASE_SECONDS must be at least 2, not {text!r}")
    return seconds


def _whole(text: str, name: str, most: int) -> int:
    """A whole number from 1 to ``most`` (a limit must exist, and a year is beyond any session)."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= most:
        raise ValueError(f"{PREFIX}{name} must be a whole number from 1 to {most}, not {text!r}")
    return value


def _networks(text: str, name: str) -> tuple[str, ...]:
    """Comma-separated addresses or networks, checked and written as CIDR; empty for none."""
    networks = []
    for item in filter(None, (part.strip() for part in text.split(","))):
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise ValueError(f"{PREFIX}{name} must list IP addresses or networks (such as 10.0.0.2 or "
                             f"10.0.0.0/24), separated by commas, not {item!r}") from None
    return tuple(networks)


def _secret(text: str, name: str) -> str:
    """Empty (not set), or long enough that it cannot be guessed."""
    value = text.strip()
    if value and len(value) < 32:
        raise ValueError(f"{PREFIX}{name} must be at least 32 characters (for instance the output of "
                         "python -c 'import secrets; print(secrets.token_urlsafe(32))'), or empty")
    return value


def _log_format(text: str) -> LogFormat:
    try:
        return LogFormat(text.strip().lower())
    except ValueError:
        raise ValueError(f"{PREFIX}LOG_FORMAT must be text or json, not {text!r}") from None


def _instant(text: str, name: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{PREFIX}{name} must be an ISO 8601 instant, not {text!r}") from None
    if value.tzinfo is None:
        raise ValueError(f"{PREFIX}{name} needs a time zone offset, e.g. 2027-01-04T09:00:00+01:00")
    return value


@dataclass(frozen=True, slots=True)
class OidcSettings:
    """The municipality's OpenID Connect provider (DESIGN.md "Signing in"); the redirect URI
    registered with it is ``{SAMHANDLING_PUBLIC_BASE_URL}/logg-inn/callback``."""

    issuer: str
    client_id: str
    client_secret: str = field(default="", repr=False)
    scopes: str = ENVIRONMENT["OIDC_SCOPES"]


def _oidc(source: dict[str, str]) -> OidcSettings | None:
    """Sign-in with OIDC when an issuer is set; without one the pages keep the token form (the demo)."""
    issuer = _read("OIDC_ISSUER", source).strip()  # exactly as the ID token's iss has it
    if not issuer:
        return None
    parts = urlsplit(issuer)
    loopback = parts.hostname in {"localhost", "127.0.0.1", "::1"}
    if parts.scheme != "https" and not (parts.scheme == "http" and loopback):
        raise ValueError(f"{PREFIX}OIDC_ISSUER must be an https address (http only on this machine), "
                         f"not {issuer!r}")
    client_id = _read("OIDC_CLIENT_ID", source).strip()
    if not client_id:
        raise ValueError(f"{PREFIX}OIDC_CLIENT_ID is needed with {PREFIX}OIDC_ISSUER")
    scopes = " ".join(_read("OIDC_SCOPES", source).split())
    if "openid" not in scopes.split():
        raise ValueError(f"{PREFIX}OIDC_SCOPES must include openid, not {scopes!r}")
    return OidcSettings(issuer=issuer, client_id=client_id,
                        client_secret=_read("OIDC_CLIENT_SECRET", source).strip(), scopes=scopes)


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = ENVIRONMENT["DATABASE_URL"]
    public_base_url: str = ENVIRONMENT["PUBLIC_BASE_URL"]
    host: str = ENVIRONMENT["HOST"]
    port: int = int(ENVIRONMENT["PORT"])
    #: Reverse proxies (CIDR) whose X-Forwarded-For names the client (ratelimit.ClientAddress
    #: and uvicorn's forwarded_allow_ips); nobody's by default.
    trusted_proxies: tuple[str, ...] = ()
    timezone: str = ENVIRONMENT["TIMEZONE"]
    smtp: SmtpSettings | None = None
    mail_from: str = ENVIRONMENT["MAIL_FROM"]
    mail_from_name: str = ENVIRONMENT["MAIL_FROM_NAME"]
    mail_folder: Path = field(default_factory=lambda: Path(ENVIRONMENT["MAIL_FOLDER"]))
    #: The server secret every answer link is derived from (``dispatch.answer_link_key``); when
    #: empty, a SQLite database keeps a generated one in a file beside it.
    link_secret: str = field(default="", repr=False)
    email_level_cap: Level = Level.LOGISTICS
    dispatcher_enabled: bool = True
    dispatch_interval_seconds: float = 5.0
    #: How long a claimed outbox row is held; after a crash, its messages wait this long.
    dispatch_lease_seconds: float = 300.0
    #: Messages one instance hands to the relay at once; after a crash, at most these go twice.
    dispatch_in_flight: int = 8
    max_body_bytes: int = 65536
    #: A signed-in browser is signed out after this long without a page view ...
    session_idle_minutes: int = 30
    #: ... and this long after signing in, however active (DESIGN.md "Signing in").
    session_max_hours: int = 10
    log_level: str = "INFO"
    log_format: LogFormat = LogFormat.TEXT
    #: When set, ``/metrics`` answers only ``Authorization: Bearer <this>``; empty leaves it open
    #: (for a network where only the scraper reaches the service).
    metrics_token: str = field(default="", repr=False)
    #: Run the service's clock from this instant instead of the wall clock (tests, demos
    #: and training); empty for the real time.
    clock_start: datetime | None = None
    #: Days from closing a case until its personal data is deleted (``records.retention``).
    retention_days: int = int(ENVIRONMENT["RETENTION_DAYS"])
    #: Sign-in with the municipality's OpenID Connect provider; None keeps the token form.
    oidc: OidcSettings | None = None
    #: The ORGANIZER mailbox over IMAP; None reads ``inbox_folder`` instead (coordination.replies).
    imap: ImapSettings | None = None
    inbox_folder: Path = field(default_factory=lambda: Path(ENVIRONMENT["INBOX_FOLDER"]))
    inbox_interval_seconds: float = float(ENVIRONMENT["INBOX_INTERVAL_SECONDS"])
    #: SMS: the gateway (a folder by default), the level cap and the daytime hours.
    sms: SmsSettings = field(default_factory=SmsSettings)

    @property
    def is_sqlite(self) -> bool:
        return self.database_url.startswith("sqlite")

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Settings:
        """Read and validate every setting; a bad value stops the start with a clear message."""
        source = dict(os.environ) if env is None else env
        security = _read("SMTP_SECURITY", source)
        if security not in {"none", "starttls", "tls"}:
            raise ValueError(f"{PREFIX}SMTP_SECURITY must be none, starttls or tls, not {security!r}")
        smtp_host = _read("SMTP_HOST", source).strip()
        smtp = (
            SmtpSettings(
                host=smtp_host,
                port=int(_read("SMTP_PORT", source)),
                security=SmtpSecurity(security),
                username=_read("SMTP_USERNAME", source) or None,
                password=_read("SMTP_PASSWORD", source) or None,
                timeout=float(_read("SMTP_TIMEOUT_SECONDS", source)),
                max_messages_per_connection=_whole(_read("SMTP_MESSAGES_PER_CONNECTION", source),
                                                   "SMTP_MESSAGES_PER_CONNECTION", 100000),
            )
            if smtp_host
            else None
        )
        cap = _read("EMAIL_LEVEL_CAP", source)
        try:
            level_cap = Level(cap)
        except ValueError:
            raise ValueError(
                f"{PREFIX}EMAIL_LEVEL_CAP must be one of logistics, purpose, content, not {cap!r}"
            ) from None
        if level_cap is Level.NONE:
            raise ValueError(f"{PREFIX}EMAIL_LEVEL_CAP cannot be none: mail needs a time and place")
        return cls(
            database_url=_read("DATABASE_URL", source),
            public_base_url=_read("PUBLIC_BASE_URL", source).rstrip("/"),
            host=_read("HOST", source),
            port=int(_read("PORT", source)),
            trusted_proxies=_networks(_read("TRUSTED_PROXIES", source), "TRUSTED_PROXIES"),
            timezone=_read("TIMEZONE", source),
            smtp=smtp,
            mail_from=_read("MAIL_FROM", source),
            mail_from_name=_read("MAIL_FROM_NAME", source),
            mail_folder=Path(_read("MAIL_FOLDER", source)),
            link_secret=_secret(_read("LINK_SECRET", source), "LINK_SECRET"),
            email_level_cap=level_cap,
            dispatcher_enabled=_bool(_read("DISPATCHER_ENABLED", source), "DISPATCHER_ENABLED"),
            dispatch_interval_seconds=float(_read("DISPATCH_INTERVAL_SECONDS", source)),
            dispatch_lease_seconds=_lease(_read("DISPATCH_LEASE_SECONDS", source)),
            dispatch_in_flight=_whole(_read("DISPATCH_IN_FLIGHT", source), "DISPATCH_IN_FLIGHT", 100),
            max_body_bytes=int(_read("MAX_BODY_BYTES", source)),
            session_idle_minutes=_whole(_read("SESSION_IDLE_MINUTES", source), "SESSION_IDLE_MINUTES", 525600),
            session_max_hours=_whole(_read("SESSION_MAX_HOURS", source), "SESSION_MAX_HOURS", 8760),
            log_level=_read("LOG_LEVEL", source).upper(),
            log_format=_log_format(_read("LOG_FORMAT", source)),
            metrics_token=_secret(_read("METRICS_TOKEN", source), "METRICS_TOKEN"),
            clock_start=_instant(_read("CLOCK_START", source), "CLOCK_START"),
            retention_days=_whole(_read("RETENTION_DAYS", source), "RETENTION_DAYS", 3650),
            oidc=_oidc(source),
            imap=read_imap(lambda name: _read(name, source), PREFIX),
            inbox_folder=Path(_read("INBOX_FOLDER", source)),
            inbox_interval_seconds=read_interval(_read("INBOX_INTERVAL_SECONDS", source), "INBOX_INTERVAL_SECONDS",
                                                 PREFIX),
            sms=read_sms(lambda name: _read(name, source), PREFIX),
        )
