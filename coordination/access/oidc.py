"""Who a person signed in at the identity provider is here (DESIGN.md "Signing in").

Only users the unit's admin created can sign in; nobody gets an account by signing in. The rule:

1. A user already linked to the provider's ``(iss, sub)`` is that person. The subject is the
   only stable identifier every provider gives (Entra ID's and ID-porten's are pairwise, per
   client, which is all we need), and it never changes with a name or an address.
2. Otherwise, at the first sign-in, the person is the one user not yet linked to any identity
   whose national identity number the admin registered (``create-user --pid``) equals the
   ``pid`` claim (ID-porten and Ansattporten send it and no e-mail), or else whose e-mail equals
   the ``email`` claim, when the provider vouches for that address: ``email_verified`` true
   (Keycloak and most providers), or Entra ID's ``xms_edov`` (the address's domain belongs to the
   tenant; Entra sends no ``email_verified``). The identity is then linked, the number erased,
   and the link audited; from then on only rule 1 applies, so a later change of e-mail at the
   provider, or a new holder of an old address, never reaches another user.
3. No such user, two of them, or an address not vouched for: the sign-in is refused and nothing
   is written. A deactivated user is refused too (and not linked).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import func
from sqlmodel import col, select, update
from sqlmodel.ext.asyncio.session import AsyncSession

from coordination.changes import Change, actor_of
from coordination.domain import AuditAction
from coordination.models import User

PID = re.compile(r"\d{11}")


class Refusal(StrEnum):
    UNKNOWN = "unknown"
    EMAIL_NOT_VERIFIED = "email_not_verified"
    AMBIGUOUS = "ambiguous"
    DEACTIVATED = "deactivated"


class SignInRefused(Exception):
    """The person signed in at the provider, but is no active user here."""

    def __init__(self, reason: Refusal, identity: Identity) -> None:
        super().__init__(reason.value)
        self.reason = reason
        self.identity = identity


def _true(value: object) -> bool:
    return value is True or value in ("true", "1", 1)


@dataclass(frozen=True, slots=True)
class Identity:
    """What the verified ID token (and, where it has no e-mail, the userinfo answer) says."""

    issuer: str
    subject: str
    email: str = ""
    email_verified: bool = False
    pid: str = ""

    @classmethod
    def from_claims(cls, issuer: str, claims: dict[str, Any]) -> Identity:
        email = claims.get("email")
        pid = claims.get("pid")
        return cls(
            issuer=issuer,
            subject=str(claims["sub"]),
            email=email.strip() if isinstance(email, str) else "",
            email_verified=_true(claims.get("email_verified")) or _true(claims.get("xms_edov")),
            pid=pid if isinstance(pid, str) and PID.fullmatch(pid) else "",
        )


async def linked_user(session: AsyncSession, issuer: str, subject: str) -> User | None:
    found = await session.exec(select(User).where(col(User.oidc_issuer) == issuer,
                                                  col(User.oidc_subject) == subject))
    return found.first()


async def _first_sign_in_candidates(session: AsyncSession, identity: Identity) -> tuple[list[User], str]:
    """The users not yet linked whom the identity names, and by what (``pid`` or ``email``)."""
    unlinked = select(User).where(col(User.oidc_subject).is_(None))
    if identity.pid:
        by_pid = list((await session.exec(unlinked.where(col(User.pending_pid) == identity.pid))).all())
        if by_pid:
            return by_pid, "pid"
    if identity.email and identity.email_verified:
        address = identity.email.lower()
        by_email = await session.exec(unlinked.where(func.lower(col(User.email)) == address))
        return list(by_email.all()), "email"
    return [], ""


async def match_user(session: AsyncSession, identity: Identity, now: datetime) -> User:
    """The active user this identity is (linking it at the first sign-in), or ``SignInRefused``."""
    user = await linked_user(session, identity.issuer, identity.subject)
    if user is not None:
        if not user.active:
            raise SignInRefused(Refusal.DEACTIVATED, identity)
        return user
    candidates, matched_by = await _first_sign_in_candidates(session, identity)
    active = [c for c in candidates if c.active]
    if len(active) > 1:
        raise SignInRefused(Refusal.AMBIGUOUS, identity)
    if not active:
        if candidates:
            raise SignInRefused(Refusal.DEACTIVATED, identity)
        unverified = identity.email and not identity.email_verified and not identity.pid
        raise SignInRefused(Refusal.EMAIL_NOT_VERIFIED if unverified else Refusal.UNKNOWN, identity)
    (user,) = active
    # Only while still unlinked: of two first sign-ins at once, one links and the other is refused.
    linked = await session.exec(update(User).where(col(User.id) == user.id, col(User.oidc_subject).is_(None))
                                .values(oidc_issuer=identity.issuer, oidc_subject=identity.subject,
                                        pending_pid=None))
    if linked.rowcount != 1:
        raise SignInRefused(Refusal.UNKNOWN, identity)
    await session.refresh(user)
    change = Change(session, user.unit_id, None, actor_of(user), now)
    change.record(AuditAction.USER_IDENTITY_LINKED, f"user:{user.id}", {"by": matched_by}, feeds=False)
    return user


async def expect_pid(session: AsyncSession, user_id: int, pid: str) -> None:
    """The first sign-in with ID-porten or Ansattporten (which send no e-mail) is matched by this number."""
    if not valid_pid(pid):
        raise ValueError("a national identity number has 11 digits")
    await session.exec(update(User).where(col(User.id) == user_id).values(pending_pid=pid))


def valid_pid(text: str) -> bool:
    """Eleven digits, as ID-porten's ``pid`` (the check digits are the provider's business)."""
    return PID.fullmatch(text) is not None
