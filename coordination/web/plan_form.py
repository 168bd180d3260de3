"""The plan form: from the submitted fields to the API's own ``PlanIn``, and from a refusal
back to the field at fault.

The form's field names follow the API's paths ("measures-0-weekly-1-start" for
``measures[0].weekly[1].start``), so a refusal by msgspec or by the service names its field
for the error summary. Repeated rows (goals, measures and their weekly times, office hours,
closures) come as many as were posted; empty rows are left out of ``PlanIn``, and the form
remembers which row became which item, so an error on ``measures[1]`` marks the row the
caseworker typed it in. Without JavaScript a row is added by a submit button that shows the
form again with one more.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date

import msgspec
from babel.dates import get_day_names
from litestar.datastructures import FormMultiDict

from calendars.slots import DEFAULT_OFFICE_HOURS
from coordination.domain import Language
from coordination.errors import InputError
from coordination.outbox.queue import DEFAULT_REMINDER_OFFSETS_HOURS
from coordination.schemas import PlanIn, PlanOut, RulesIn
from coordination.web import texts as t

#: (value, name) of each weekday for the select boxes: "0", "mandag".
WEEKDAYS = sorted((str(number), name) for number, name in get_day_names("wide", locale=Language.NB.value).items())
#: Empty rows a form offers beside the filled ones.
SPARE_ROWS = {"smart_goals": 1, "measures": 1, "weekly": 1, "office_hours": 1, "closures": 1}
#: Empty rows a new plan's form starts with: the guide recommends at most three goals at a time.
FIRST_ROWS = {"smart_goals": 3, "measures": 2, "weekly": 2, "closures": 1}


@dataclass
class TimeRow:
    weekday: str = ""
    start: str = ""
    end: str = ""

    def empty(self) -> bool:
        return not (self.start or self.end)


@dataclass
class GoalRow:
    goal: str = ""
    indicator: str = ""
    level_now: str = ""
    target: str = ""
    deadline: str = ""

    def empty(self) -> bool:
        return not any((self.goal, self.indicator, self.level_now, self.target, self.deadline))


@dataclass
class MeasureRow:
    what: str = ""
    how_often: str = ""
    contact_ids: list[str] = field(default_factory=list)
    weekly: list[TimeRow] = field(default_factory=list)

    def empty(self) -> bool:
        return not (self.what or self.how_often or self.contact_ids or any(not w.empty() for w in self.weekly))


@dataclass
class ClosureRow:
    first: str = ""
    last: str = ""
    label: str = ""

    def empty(self) -> bool:
        return not (self.first or self.last or self.label)


@dataclass
class PlanForm:
    """The form's values as typed, rows included, to show again or to turn into ``PlanIn``."""

    start_date: str = ""
    expected_end: str = ""
    day_care: bool = False
    goals: str = ""
    default_place: str = ""
    member_ids: list[str] = field(default_factory=list)
    child_takes_part: bool = True
    not_before: str = ""
    not_after: str = ""
    after_school: str = ""
    reminders: str = ""
    smart_goals: list[GoalRow] = field(default_factory=list)
    measures: list[MeasureRow] = field(default_factory=list)
    office_hours: list[TimeRow] = field(default_factory=list)
    closures: list[ClosureRow] = field(default_factory=list)

    def add_row(self, where: str) -> None:
        """One more empty row: ``where`` is "smart_goals", "measures", "office_hours",
        "closures" or "measures-<n>-weekly"; anything else adds nothing."""
        found = re.fullmatch(r"measures-(\d+)-weekly", where)
        if where == "smart_goals":
            self.smart_goals.append(GoalRow())
        elif where == "measures":
            self.measures.append(_new_measure())
        elif where == "office_hours":
            self.office_hours.append(TimeRow())
        elif where == "closures":
            self.closures.append(ClosureRow())
        elif found and int(found.group(1)) < len(self.measures):
            self.measures[int(found.group(1))].weekly.append(TimeRow())


def _new_measure() -> MeasureRow:
    return MeasureRow(weekly=[TimeRow() for _ in range(FIRST_ROWS["weekly"])])


# --- from the plan, and from the posted form ---------------------------------------------


def form_of_plan(plan: PlanOut | None, active_ids: Sequence[int], today: date) -> PlanForm:
    """The form for the plan as it stands, or for a new plan (all active contacts taking part,
    the default office hours and reminders), with empty rows to fill in."""
    if plan is None:
        return PlanForm(
            start_date=today.isoformat(), member_ids=[str(i) for i in active_ids],
            reminders=", ".join(str(h) for h in DEFAULT_REMINDER_OFFSETS_HOURS),
            smart_goals=[GoalRow() for _ in range(FIRST_ROWS["smart_goals"])],
            measures=[_new_measure() for _ in range(FIRST_ROWS["measures"])],
            office_hours=[_time_row(w.weekday, f"{w.start:%H:%M}", f"{w.end:%H:%M}") for w in DEFAULT_OFFICE_HOURS],
            closures=[ClosureRow() for _ in range(FIRST_ROWS["closures"])],
        )
    wishes = plan.child_wishes
    rules = plan.rules
    office = rules.office_hours if rules.office_hours is not msgspec.UNSET else None
    reminders = (rules.reminder_offsets_hours if rules.reminder_offsets_hours is not msgspec.UNSET
                 else DEFAULT_REMINDER_OFFSETS_HOURS)
    form = PlanForm(
        start_date=plan.start_date.isoformat(), expected_end=plan.expected_end.isoformat(), day_care=plan.day_care,
        goals=plan.goals, default_place=plan.default_place, member_ids=[str(i) for i in plan.member_ids],
        child_takes_part=plan.child_takes_part,
        not_before=(wishes.not_before or "") if wishes else "", not_after=(wishes.not_after or "") if wishes else "",
        after_school=(wishes.after_school or "") if wishes else "",
        reminders=", ".join(str(h) for h in reminders),
        smart_goals=[GoalRow(g.goal, g.indicator, g.level_now, g.target, g.deadline.isoformat() if g.deadline else "")
                     for g in plan.smart_goals],
        measures=[MeasureRow(m.what, m.how_often, [str(i) for i in m.contact_ids],
                             [_time_row(w.weekday, w.start, w.end) for w in m.weekly]) for m in plan.measures],
        office_hours=[_time_row(w.weekday, w.start, w.end) for w in office] if office is not None else
        [_time_row(w.weekday, f"{w.start:%H:%M}", f"{w.end:%H:%M}") for w in DEFAULT_OFFICE_HOURS],
        closures=[ClosureRow(c.first.isoformat(), c.last.isoformat(), c.label) for c in plan.closures],
    )
    with_spare_rows(form)
    return form


def with_spare_rows(form: PlanForm) -> None:
    for name in ("smart_goals", "measures", "office_hours", "closures"):
        for _ in range(SPARE_ROWS[name]):
            form.add_row(name)
    for index, measure in enumerate(form.measures):
        if not measure.weekly or not measure.weekly[-1].empty():
            form.add_row(f"measures-{index}-weekly")


def _time_row(weekday: int, start: str, end: str) -> TimeRow:
    return TimeRow(str(weekday), start, end)


def _count(data: FormMultiDict, prefix: str) -> int:
    """How many rows of ``prefix`` were posted: one more than the highest row number."""
    pattern = re.compile(rf"{re.escape(prefix)}-(\d+)-")
    numbers = [int(m.group(1)) for name in data if (m := pattern.match(name))]
    return min(max(numbers, default=-1) + 1, 50)


def read_form(data: FormMultiDict) -> PlanForm:
    """The posted plan form as typed (a missing field is empty, an unticked box false)."""

    def text(name: str) -> str:
        return str(data.get(name) or "").strip()

    def time_rows(prefix: str) -> list[TimeRow]:
        return [TimeRow(text(f"{prefix}-{i}-weekday"), text(f"{prefix}-{i}-start"), text(f"{prefix}-{i}-end"))
                for i in range(_count(data, prefix))]

    return PlanForm(
        start_date=text("start_date"), expected_end=text("expected_end"), day_care=data.get("day_care") == "ja",
        goals=str(data.get("goals") or "").strip(), default_place=text("default_place"),
        member_ids=[str(v) for v in data.getall("member_ids", [])],
        child_takes_part=data.get("child_takes_part") == "ja",
        not_before=text("child_wishes-not_before"), not_after=text("child_wishes-not_after"),
        after_school=text("child_wishes-after_school"), reminders=text("rules-reminder_offsets_hours"),
        smart_goals=[GoalRow(*(text(f"smart_goals-{i}-{part}") for part in
                               ("goal", "indicator", "level_now", "target", "deadline")))
                     for i in range(_count(data, "smart_goals"))],
        measures=[MeasureRow(text(f"measures-{i}-what"), text(f"measures-{i}-how_often"),
                             [str(v) for v in data.getall(f"measures-{i}-contact_ids", [])],
                             time_rows(f"measures-{i}-weekly"))
                  for i in range(_count(data, "measures"))],
        office_hours=time_rows("rules-office_hours"),
        closures=[ClosureRow(text(f"closures-{i}-first"), text(f"closures-{i}-last"), text(f"closures-{i}-label"))
                  for i in range(_count(data, "closures"))],
    )


# --- to the API's body ------------------------------------------------------------------


@dataclass
class RowMap:
    """Which form row each item of ``PlanIn``'s lists came from (empty rows are left out)."""

    smart_goals: list[int] = field(default_factory=list)
    measures: list[int] = field(default_factory=list)
    weekly: dict[int, list[int]] = field(default_factory=dict)
    office_hours: list[int] = field(default_factory=list)
    closures: list[int] = field(default_factory=list)

    def element_id(self, path: str) -> str:
        """The id of the form field for an API path ("measures[1].weekly[0].end"), or ""."""
        path = path.removeprefix("$.")
        parts = re.findall(r"(\w+)(?:\[(\d+)\])?", path)
        names = [p[0] for p in parts]
        numbers = [int(p[1]) if p[1] else None for p in parts]
        if not names:
            return ""
        head = names[0]
        if head in ("smart_goals", "closures") and numbers[0] is not None:
            row = _row(getattr(self, head), numbers[0])
            return f"{head}-{row}-{names[1] if len(names) > 1 else 'goal' if head == 'smart_goals' else 'first'}"
        if head == "measures" and numbers[0] is not None:
            row = _row(self.measures, numbers[0])
            if len(names) > 1 and names[1] == "weekly" and numbers[1] is not None:
                time_row = _row(self.weekly.get(row, []), numbers[1])
                return f"measures-{row}-weekly-{time_row}-{names[2] if len(names) > 2 else 'end'}"
            return f"measures-{row}-{names[1] if len(names) > 1 and names[1] != 'weekly' else 'what'}"
        if head == "rules" and len(names) > 1:
            if names[1] == "office_hours":
                row = _row(self.office_hours, numbers[1] or 0)
                return f"rules-office_hours-{row}-{names[2] if len(names) > 2 else 'end'}"
            return "rules-reminder_offsets_hours" if names[1] == "reminder_offsets_hours" else ""
        if head == "child_wishes":
            return f"child_wishes-{names[1] if len(names) > 1 else 'not_before'}"
        return _TOP_FIELDS.get(head, "")


_TOP_FIELDS = {"start_date": "start_date", "expected_end": "expected_end", "order_date": "expected_end",
               "goals": "goals", "default_place": "default_place", "member_ids": "member_ids",
               "members": "member_ids", "day_care": "day_care", "child_takes_part": "child_takes_part",
               "office_hours": "rules-office_hours-0-end"}


def _row(rows: Sequence[int], index: int) -> int:
    return rows[index] if index < len(rows) else index


def plan_in(form: PlanForm, current: RulesIn | None, rows: RowMap) -> PlanIn:
    """The form as the API's body, checked by msgspec as a JSON body is; the schedule rules
    the form does not show are kept as the plan has them. Raises ``FormError`` on the path
    of the field at fault; ``rows`` learns which form row each item came from, so that
    ``rows.element_id`` finds that field on the form."""
    body: dict[str, object] = {
        "start_date": _day(form.start_date, "start_date", "Skriv når planen starter."),
        "expected_end": _day(form.expected_end, "expected_end", "Skriv når planen forventes å slutte."),
        "day_care": form.day_care, "goals": form.goals, "default_place": form.default_place,
        "member_ids": [_id(v, "member_ids") for v in form.member_ids],
        "child_takes_part": form.child_takes_part,
        "child_wishes": _wishes(form),
        "smart_goals": _goals(form, rows),
        "measures": _measures(form, rows),
        "closures": _closures(form, rows),
        "rules": _rules(form, rows, current),
    }
    try:
        return msgspec.convert(body, PlanIn)
    except msgspec.ValidationError as error:
        found = re.search(r"at `\$\.([^`]+)`", str(error))
        path = found.group(1) if found else ""
        names = re.findall(r"[A-Za-z_]+", path)
        raise t.FormError(path, _WORDS.get(names[-1] if names else "", _ANY_WORDS)) from None


def _day(text: str, path: str, missing: str | None = None) -> str | None:
    if not text:
        if missing:
            raise t.FormError(path, missing)
        return None
    try:
        return date.fromisoformat(text).isoformat()
    except ValueError:
        raise t.FormError(path, "Skriv datoen som åååå-mm-dd.") from None


def _id(text: str, path: str) -> int:
    if not text.isdigit():
        raise t.FormError(path, "Velg blant kontaktene i saken.")
    return int(text)


def _wishes(form: PlanForm) -> dict[str, str] | None:
    wishes = {"not_before": form.not_before, "not_after": form.not_after, "after_school": form.after_school}
    return {k: v for k, v in wishes.items() if v} or None


def _goals(form: PlanForm, rows: RowMap) -> list[dict[str, object]]:
    goals: list[dict[str, object]] = []
    for number, row in enumerate(form.smart_goals):
        if row.empty():
            continue
        path = f"smart_goals[{len(goals)}]"
        rows.smart_goals.append(number)
        if not row.goal:
            raise t.FormError(f"{path}.goal", "Skriv hva målet er, eller tøm hele raden.")
        goals.append({"goal": row.goal, "indicator": row.indicator, "level_now": row.level_now,
                      "target": row.target, "deadline": _day(row.deadline, f"{path}.deadline")})
    return goals


def _measures(form: PlanForm, rows: RowMap) -> list[dict[str, object]]:
    measures: list[dict[str, object]] = []
    for number, row in enumerate(form.measures):
        if row.empty():
            continue
        path = f"measures[{len(measures)}]"
        rows.measures.append(number)
        if not row.what:
            raise t.FormError(f"{path}.what", "Skriv hva tiltaket er, eller tøm hele raden.")
        used = rows.weekly.setdefault(number, [])
        measures.append({"what": row.what, "how_often": row.how_often,
                         "contact_ids": [_id(v, f"{path}.contact_ids") for v in row.contact_ids],
                         "weekly": _windows(row.weekly, used, f"{path}.weekly")})
    return measures


def _windows(time_rows: Sequence[TimeRow], used: list[int], path: str) -> list[dict[str, object]]:
    windows: list[dict[str, object]] = []
    for number, row in enumerate(time_rows):
        if row.empty():
            continue
        used.append(number)
        where = f"{path}[{len(windows)}]"
        if not (row.start and row.end):
            raise t.FormError(f"{where}.{'end' if row.start else 'start'}", "Fyll ut både fra og til, eller tøm raden.")
        weekday = int(row.weekday) if row.weekday.isdigit() else -1
        windows.append({"weekday": weekday, "start": row.start, "end": row.end})
    return windows


def _closures(form: PlanForm, rows: RowMap) -> list[dict[str, object]]:
    closures: list[dict[str, object]] = []
    for number, row in enumerate(form.closures):
        if row.empty():
            continue
        path = f"closures[{len(closures)}]"
        rows.closures.append(number)
        closures.append({"first": _day(row.first, f"{path}.first", "Skriv første dag."),
                         "last": _day(row.last, f"{path}.last", "Skriv siste dag."), "label": row.label})
    return closures


def _rules(form: PlanForm, rows: RowMap, current: RulesIn | None) -> dict[str, object]:
    """The plan's rules with the form's office hours and reminders; a value equal to the
    default, where the plan had none, stays unset."""
    kept = msgspec.to_builtins(current) if current is not None else {}
    office = _windows(form.office_hours, rows.office_hours, "rules.office_hours")
    defaults = [{"weekday": w.weekday, "start": f"{w.start:%H:%M}", "end": f"{w.end:%H:%M}"}
                for w in DEFAULT_OFFICE_HOURS]
    if "office_hours" in kept or office != defaults:
        kept["office_hours"] = office
    hours = _hours(form.reminders)
    if "reminder_offsets_hours" in kept or hours != list(DEFAULT_REMINDER_OFFSETS_HOURS):
        kept["reminder_offsets_hours"] = hours
    return kept


def _hours(text: str) -> list[int]:
    parts = [p.strip() for p in re.split(r"[,;\s]+", text) if p.strip()]
    if not all(p.isdigit() for p in parts):
        raise t.FormError("rules.reminder_offsets_hours", _WORDS["reminder_offsets_hours"])
    return [int(p) for p in parts]


#: msgspec's refusals in words, by the name of the field at fault.
_ANY_WORDS = "Kontroller feltet: verdien er ugyldig."
_LINE = "Skriv høyst 200 tegn, uten linjeskift."
_CLOCK = "Skriv klokkeslettet som tt:mm."
_WORDS: Mapping[str, str] = {
    "goal": _LINE, "indicator": _LINE, "level_now": _LINE, "target": _LINE, "what": _LINE, "how_often": _LINE,
    "label": _LINE, "default_place": _LINE,
    "goals": "Formålet kan ha høyst 4000 tegn.",
    "start": _CLOCK, "end": _CLOCK, "not_before": _CLOCK, "not_after": _CLOCK, "after_school": _CLOCK,
    "weekday": "Velg en ukedag.",
    "reminder_offsets_hours": "Skriv antall timer før møtet, fra 1 til 336, skilt med komma – høyst fem.",
    "smart_goals": "En plan kan ha høyst 10 mål. Tøm radene som ikke trengs.",
    "measures": "En plan kan ha høyst 20 tiltak.",
    "weekly": "Et tiltak kan ha høyst 14 faste tider i uka.",
    "office_hours": "Kontortiden kan ha høyst 14 rader.",
    "closures": "En plan kan ha høyst 20 stengte perioder.",
    "member_ids": "Velg blant kontaktene i saken.",
    "contact_ids": "Velg blant kontaktene i saken.",
}


#: The service's refusals of a plan in words (the rest are the pages' common ones).
_SERVICE_WORDS = (
    (r"cannot start before the child was born", "Planen kan ikke starte før barnet ble født."),
    (r"end when the child turns 25 \((\d{4}-\d\d-\d\d)\)", "Tiltak fra barnevernet varer til barnet fyller 25 år "
                                                           "({0})."),
    (r"must be after the plan's start", "Forventet slutt må være etter at planen starter."),
    (r"ordered measure ends at most (\d+) months after the order \((\d{4}-\d\d-\d\d)\)",
     "Et pålagt tiltak varer høyst {0} måneder etter vedtaket ({1}), unntatt barnehageplass."),
    (r"is required for an ordered measure", "Saken mangler vedtaksdato for det pålagte tiltaket. Rett saken først."),
    (r"at least one member", "Velg minst én som skal være med i planens møter."),
    (r"is not an active contact of this case", "Velg bare aktive kontakter i saken."),
    (r"closure must end on or after", "Siste dag må være samme dag som eller etter første dag."),
    (r"deadline must lie within the plan \((\d{4}-\d\d-\d\d) – (\d{4}-\d\d-\d\d)\)",
     "Fristen må ligge innenfor planen: {0} – {1}."),
    (r"weekly time must end after|start must be before end", "Til-tiden må være etter fra-tiden."),
    (r"not_before must be before not_after", "«Ikke før» må være tidligere enn «ikke etter»."),
)


def error_words(error: InputError) -> str:
    """The refusal in words for the caseworker."""
    if isinstance(error, t.FormError):
        return error.message
    for pattern, words in _SERVICE_WORDS:
        found = re.search(pattern, error.message)
        if found:
            return words.format(*(_as_day(g) for g in found.groups()))
    return t.error_text(error)


def _as_day(text: str) -> str:
    return t.day(date.fromisoformat(text)) if re.fullmatch(r"\d{4}-\d\d-\d\d", text) else text

