"""The tables. Consent and audit are append-only: the service never updates or deletes
their rows, a change is a new row."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import JSON as SAJSON
from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from coordination.db import UTCDateTime


def _utc(nullable: bool = False, index: bool = False) -> Column[datetime]:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Unit(SQLModel, table=True):
    """A child welfare service (barneverntjeneste)."""

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(max_length=200)
    phone: str = Field(default="", max_length=40)
    show_child_name_in_feeds: bool = False
    created_at: datetime = Field(sa_column=_utc())


class User(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    name: str = Field(max_length=200)
    email: str = Field(default="", max_length=254)
    role: str = Field(sa_type=String(20))
    token_hash: str = Field(sa_type=String(64), unique=True)
    active: bool = True
    created_at: datetime = Field(sa_column=_utc())


class Case(SQLModel, table=True):
    __table_args__ = (UniqueConstraint("unit_id", "reference"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    reference: str = Field(max_length=40)
    child_given_name: str = Field(max_length=100)
    child_initials: str = Field(max_length=10)
    child_birth_date: date
    language: str = Field(default="nb", sa_type=String(5))
    aimed_at_child: bool = True
    measure_type: str = Field(default="voluntary", sa_type=String(20))
    order_date: date | None = None
    party_status_override: bool | None = None
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class CaseCoordinator(SQLModel, table=True):
    case_id: int = Field(foreign_key="case.id", primary_key=True)
    user_id: int = Field(foreign_key="user.id", primary_key=True, index=True)


class Contact(SQLModel, table=True):
    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id", index=True)
    name: str = Field(max_length=200)
    role: str = Field(sa_type=String(30))
    role_label: str = Field(default="", max_length=100)
    sector: str = Field(sa_type=String(20))
    organisation: str = Field(default="", max_length=200)
    email: str = Field(default="", max_length=254)
    phone: str = Field(default="", max_length=40)
    language: str = Field(default="nb", sa_type=String(5))
    daily_care: bool = False
    needs_interpreter: bool = False
    interpreter_language: str = Field(default="", max_length=50)
    availability: list[dict[str, object]] = Field(default_factory=list, sa_type=SAJSON)
    active: bool = True
    created_at: datetime = Field(sa_column=_utc())
    updated_at: datetime = Field(sa_column=_utc())


class ConsentRecord(SQLModel, table=True):
    """One act of consent: granted, refused or withdrawn, by one grantor for one sector."""

    __table_args__ = (Index("ix_consent_case_sector", "case_id", "sector"),)

    id: int | None = Field(default=None, primary_key=True)
    case_id: int = Field(foreign_key="case.id")
    grantor_contact_id: int = Field(foreign_key="contact.id", index=True)
    sector: str = Field(sa_type=String(20))
    status: str = Field(sa_type=String(20))
    level: str = Field(default="none", sa_type=String(20))
    valid_from: datetime = Field(sa_column=_utc())
    valid_until: datetime | None = Field(default=None, sa_column=_utc(nullable=True))
    form: str = Field(sa_type=String(10))
    recorded_by_user_id: int = Field(foreign_key="user.id")
    recorded_at: datetime = Field(sa_column=_utc())
    note: str = Field(default="", sa_type=Text)


class AuditEntry(SQLModel, table=True):
    """Who changed, read or was told what; never updated or deleted."""

    __table_args__ = (Index("ix_audit_case_at", "case_id", "at"),)

    id: int | None = Field(default=None, primary_key=True)
    unit_id: int = Field(foreign_key="unit.id", index=True)
    case_id: int | None = Field(default=None, foreign_key="case.id")
    actor: str = Field(max_length=60)
    action: str = Field(max_length=60)
    subject: str = Field(default="", max_length=120)
    detail: dict[str, object] = Field(default_factory=dict, sa_type=SAJSON)
    at: datetime = Field(sa_column=_utc())
