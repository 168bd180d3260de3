"""The slot finder's explanation in words a coordinator reads (bokmål)."""

from __future__ import annotations

from collections.abc import Mapping

from calendars.slots import Explanation, Rule
from calendars.zone import wall_time

_RULES = {
    Rule.WINDOW: "utenfor tidsvinduet",
    Rule.DAY_HOURS: "utenfor dagtid",
    Rule.WEEKEND: "helg",
    Rule.HOLIDAY: "helligdag",
    Rule.CLOSURE: "stengt",
    Rule.AVOID_DATE: "familien har allerede et møte den dagen",
    Rule.SPACING: "for tett på et annet møte",
    Rule.OFFICE_HOURS: "utenfor kontortid",
    Rule.CHILD_WISH: "barnets ønske",
    Rule.AVAILABILITY: "ikke tilgjengelig",
    Rule.BUSY: "opptatt",
}


def explain(explanation: Explanation, labels: Mapping[str, str]) -> list[str]:
    """One line per blocking constraint, then the nearest alternatives and what each gives up."""
    lines = []
    for blocker in explanation.blockers:
        constraint = blocker.constraint
        words = _RULES[constraint.rule]
        if constraint.participant:
            words = f"{labels.get(constraint.participant, constraint.participant)}: {words}"
        if constraint.wish:
            words += f" ({constraint.wish.value})"
        if constraint.date:
            words += f" {constraint.date.isoformat()}"
        lines.append(f"{words} – utelukker {blocker.excluded} av {explanation.candidates} mulige tider")
    for alternative in explanation.alternatives:
        start = wall_time(alternative.start).strftime("%d.%m.%Y kl. %H:%M")
        gives_up = ", ".join(
            f"{labels.get(c.participant, c.participant)}: {_RULES[c.rule]}"
            if c.participant
            else _RULES[c.rule]
            for c in alternative.gives_up
        )
        lines.append(f"Alternativ {start}" + (f" (bryter: {gives_up})" if gives_up else ""))
    return lines
