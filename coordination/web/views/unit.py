"""The leader's pages: the unit's cases, searched and paged in SQL so that a unit of thousands of
cases answers as fast as one of ten, and the unit's attention list, from the alerts the service
raises (``outbox.alerts``) and the plans' expected ends."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import ColumnElement, exists, func, or_
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from calendars.zone import local_date
from coordination.access.rules import visible_cases
from coordination.domain import CaseStatus, UserRole
from coordination.models import Alert, Case, CaseCoordinator, Meeting, Plan, User
from coordination.outbox import alerts
from coordination.web import texts as t
from coordination.web.views.common import OPEN, Choice
from notifications.ports import AlertKind

PAGE_SIZE = 50
STATUS_CHOICES = (Choice("open", "Åpne saker"), Choice("closed", "Avsluttede saker"), Choice("all", "Alle saker"))
_STATUS_WORDS = {CaseStatus.OPEN: "Åpen", CaseStatus.CLOSED: "Avsluttet", CaseStatus.PURGED: "Slettet"}


@dataclass(frozen=True, slots=True)
class CaseSearch:
    """What the leader asked for: text in the reference or initials, a coordinator ("ingen": cases
    without one), open or closed cases, and the page."""

    text: str = ""
    coordinator: str = ""
    status: str = "open"
    page: int = 1

    @classmethod
    def of(cls, query: dict[str, str]) -> CaseSearch:
        page = query.get("side", "")
        status = query.get("status", "open")
        return cls(text=query.get("sok", "").strip()[:60], coordinator=query.get("koordinator", "").strip()[:12],
                   status=status if status in {c.value for c in STATUS_CHOICES} else "open",
                   page=min(int(page), 100_000) if page.isdigit() and int(page) > 0 else 1)

    def link(self, page: int) -> str:
        """This search's address at another page."""
        asked = {"sok": self.text, "koordinator": self.coordinator,
                 "status": "" if self.status == "open" else self.status}
        query = {k: v for k, v in asked.items() if v}
        if page > 1:
            query["side"] = str(page)
        return "/enhet/saker" + ("?" + urlencode(query) if query else "")


@dataclass(frozen=True, slots=True)
class UnitCaseRow:
    id: int
    reference: str
    initials: str
    coordinators: str
    next_meeting: str
    open_alerts: int
    status: str


@dataclass(frozen=True, slots=True)
class CasePage:
    rows: list[UnitCaseRow]
    total: int
    page: int
    pages: int
    first: int
    last: int
    previous: str
    next: str


def _matches(search: CaseSearch) -> list[ColumnElement[bool]]:
    """The search as SQL conditions. Initials match without their dots and spaces ("sh" finds "S.H.")."""
    conditions: list[ColumnElement[bool]] = []
    if search.text:
        wanted = search.text.lower()
        bare = wanted.replace(".", "").replace(" ", "")
        initials = func.replace(func.replace(func.lower(col(Case.child_initials)), ".", ""), " ", "")
        either = [func.lower(col(Case.reference)).contains(wanted, autoescape=True)]
        if bare:
            either.append(initials.contains(bare, autoescape=True))
        conditions.append(or_(*either))
    assigned = select(CaseCoordinator.case_id).where(col(CaseCoordinator.case_id) == col(Case.id))
    if search.coordinator == "ingen":
        conditions.append(~exists(assigned))
    elif search.coordinator.isdigit():
        conditions.append(exists(assigned.where(CaseCoordinator.user_id == int(search.coordinator))))
    if search.status == "open":
        conditions.append(col(Case.status) == CaseStatus.OPEN)
    elif search.status == "closed":
        conditions.append(col(Case.status) != CaseStatus.OPEN)
    return conditions


async def unit_cases(session: AsyncSession, user: User, search: CaseSearch, now: datetime) -> CasePage:
    """One page of the cases ``user`` may see that match: a count and a page of rows, then the
    coordinators, next meetings and open alerts of that page only (five queries, whatever the size)."""
    query = visible_cases(user)
    for condition in _matches(search):
        query = query.where(condition)
    total = (await session.exec(select(func.count()).select_from(query.subquery()))).one()
    pages = max(1, -(-total // PAGE_SIZE))
    page = min(search.page, pages)
    cases = (await session.exec(query.order_by(col(Case.reference), col(Case.id))
                                .offset((page - 1) * PAGE_SIZE).limit(PAGE_SIZE))).all()
    ids = [c.id for c in cases]
    names: dict[int, list[str]] = {}
    starts: dict[int, datetime] = {}
    counts: dict[int, int] = {}
    if ids:
        for case_id, name in (await session.exec(
                select(CaseCoordinator.case_id, User.name).join(User, col(User.id) == CaseCoordinator.user_id)
                .where(col(CaseCoordinator.case_id).in_(ids)).order_by(col(User.name)))).all():
            names.setdefault(case_id, []).append(name)
        starts = dict((await session.exec(
            select(Meeting.case_id, func.min(Meeting.start))
            .where(col(Meeting.case_id).in_(ids), col(Meeting.status).in_(OPEN), col(Meeting.start) > now)
            .group_by(col(Meeting.case_id)))).all())
        counts = {case_id: n for case_id, n in (await session.exec(
            select(Alert.case_id, func.count()).where(col(Alert.case_id).in_(ids), col(Alert.resolved_at).is_(None))
            .group_by(col(Alert.case_id)))).all() if case_id is not None}
    rows = [UnitCaseRow(c.id or 0, c.reference, c.child_initials, ", ".join(names.get(c.id or 0, [])),
                        t.when(starts[c.id]) if c.id in starts else "", counts.get(c.id or 0, 0),
                        _STATUS_WORDS[c.status]) for c in cases]
    first = (page - 1) * PAGE_SIZE + 1 if rows else 0
    return CasePage(rows, total, page, pages, first, first + len(rows) - 1 if rows else 0,
                    search.link(page - 1) if page > 1 else "", search.link(page + 1) if page < pages else "")


async def coordinator_filter(session: AsyncSession, user: User) -> list[Choice]:
    """The search's choice of coordinator: everyone in the unit who has or had the role."""
    found = await session.exec(select(User.id, User.name).where(
        User.unit_id == user.unit_id, User.role == UserRole.COORDINATOR).order_by(col(User.name)))
    return [Choice("", "Alle"), Choice("ingen", "Uten koordinator"),
            *(Choice(str(user_id), name) for user_id, name in found.all())]


# --- the attention list -----------------------------------------------------------------

#: Up to this many items of each kind are listed; the heading says how many there are in all.
ATTENTION_LIMIT = 50
#: A plan whose expected end is this close is listed under measures ending.
PLAN_ENDING_WITHIN = timedelta(days=30)


@dataclass(frozen=True, slots=True)
class AttentionItem:
    alert_id: int | None
    case_id: int
    reference: str
    text: str
    due: str
    href: str
    #: The deadline, for the order (the soonest first).
    due_date: date | None


@dataclass(frozen=True, slots=True)
class AttentionSection:
    key: str
    title: str
    links_to: str
    total: int
    items: list[AttentionItem]


@dataclass(frozen=True, slots=True)
class _Kind:
    key: str
    title: str
    links_to: str
    alert_kinds: tuple[AlertKind, ...]


#: The sections, with the page each item links to (said on the page, so the leader knows where a click leads).
ATTENTION = (
    _Kind("samtykke", "Samtykker som snart utløper", "Samtykke-siden i saken, der et nytt samtykke registreres.",
          (AlertKind.CONSENT_EXPIRING,)),
    _Kind("evaluering", "Evalueringer som ikke er holdt",
          "Møtet, der det markeres som holdt eller flyttes.", (AlertKind.EVALUATION_OVERDUE,)),
    _Kind("tiltak", "Tiltak som slutter",
          "Oversikten over saken: pålagte tiltak som når ettårsgrensen innen 30 dager, og tiltaksplaner "
          "med forventet slutt innen 30 dager.", (AlertKind.ORDERED_MEASURE_ENDING,)),
    _Kind("meldinger", "Meldinger som ikke kom fram",
          "Utsendingene i saken som er stoppet eller ga opp, med grunnen.", (AlertKind.NOTIFICATION_FAILED,)),
)
_NAMED = {kind for section in ATTENTION for kind in section.alert_kinds}
#: Every other open alert (the child turning 15, consent ended, no time found...), so that none is missed.
OTHERS = _Kind("andre", "Andre varsler", "Siden i saken der varselet gjelder: samtykke, møteplan eller utsendinger.",
               tuple(kind for kind in AlertKind if kind not in _NAMED))


def _href(kind: AlertKind, case_id: int, detail: dict[str, object]) -> str:
    meeting = detail.get("meeting")
    if kind is AlertKind.EVALUATION_OVERDUE and isinstance(meeting, int):
        return f"/saker/{case_id}/moter/{meeting}"
    if kind is AlertKind.NOTIFICATION_FAILED:
        return f"/saker/{case_id}/utsendinger?status=stoppet"
    target = t.ALERT_TARGET.get(kind, "")
    return f"/saker/{case_id}" + (f"/{target}" if target else "")


async def _alert_section(session: AsyncSession, user: User, kind: _Kind) -> AttentionSection:
    visible = visible_cases(user).with_only_columns(col(Case.id)).where(col(Case.status) == CaseStatus.OPEN)
    where = (col(Alert.case_id).in_(visible), col(Alert.resolved_at).is_(None), col(Alert.kind).in_(kind.alert_kinds))
    total = (await session.exec(select(func.count()).select_from(Alert).where(*where))).one()
    found = (await session.exec(
        select(Alert, Case.reference).join(Case, col(Case.id) == Alert.case_id).where(*where)
        .order_by(col(Alert.due_at).is_(None), col(Alert.due_at), col(Alert.id)).limit(ATTENTION_LIMIT))).all()
    items = []
    for alert, reference in found:
        shown = await alerts.alert_out(session, alert)
        case_id = alert.case_id or 0
        due = local_date(alert.due_at) if alert.due_at else None
        items.append(AttentionItem(shown.id, case_id, reference, shown.text, t.day(due),
                                   _href(alert.kind, case_id, alert.detail), due))
    return AttentionSection(kind.key, kind.title, kind.links_to, total, items)


async def _plans_ending(session: AsyncSession, user: User, now: datetime) -> tuple[int, list[AttentionItem]]:
    today = local_date(now)
    where = (col(Plan.case_id).in_(visible_cases(user).with_only_columns(col(Case.id))
                                   .where(col(Case.status) == CaseStatus.OPEN)),
             col(Plan.expected_end) >= today, col(Plan.expected_end) <= today + PLAN_ENDING_WITHIN)
    total = (await session.exec(select(func.count()).select_from(Plan).where(*where))).one()
    found = (await session.exec(
        select(col(Plan.case_id), col(Plan.expected_end), col(Case.reference)).join(Case, col(Case.id) == Plan.case_id)
        .where(*where).order_by(col(Plan.expected_end), col(Plan.case_id)).limit(ATTENTION_LIMIT))).all()
    return total, [AttentionItem(None, case_id, reference, "Tiltaksplanen har forventet slutt", t.day(end),
                                 f"/saker/{case_id}", end) for case_id, end, reference in found]


async def attention(session: AsyncSession, user: User, now: datetime) -> list[AttentionSection]:
    """The unit's open cases that need the leader's eye, one section per kind, soonest deadline first."""
    sections = [await _alert_section(session, user, kind) for kind in (*ATTENTION, OTHERS)]
    total, plans = await _plans_ending(session, user, now)
    measures = next(s for s in sections if s.key == "tiltak")
    merged = sorted([*measures.items, *plans], key=lambda item: (item.due_date or date.max, item.reference))
    sections[sections.index(measures)] = AttentionSection(
        measures.key, measures.title, measures.links_to, measures.total + total, merged[:ATTENTION_LIMIT])
    return sections
