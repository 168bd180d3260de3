"""A small, strict reader of the iCalendar the service writes (RFC 5545 content lines), written
for the tests: fast enough to read every feed after every step of a random history, and
independent of the library the service renders with.

Strict on purpose: CRLF line ends, folded lines of at most 75 octets, no control
characters in a line, and every line of the form ``NAME;PARAM=VALUE:value``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

_LINE = re.compile(r'([A-Za-z0-9-]+)((?:;[A-Za-z0-9-]+=(?:"[^"]*"|[^";:,]*)(?:,(?:"[^"]*"|[^";:,]*))*)*):(.*)',
                   re.DOTALL)
_PARAM = re.compile(r';([A-Za-z0-9-]+)=("[^"]*"|[^";:]*)')
_ESCAPE = re.compile(r"\\(.)")
_CONTROL = re.compile("[\x00-\x08\x0a-\x1f\x7f]")


class IcsError(AssertionError):
    pass


@dataclass(frozen=True)
class Property:
    name: str
    params: dict[str, str]
    raw: str

    @property
    def text(self) -> str:
        """The value as TEXT, unescaped (RFC 5545 3.3.11)."""
        return _ESCAPE.sub(lambda m: "\n" if m.group(1) in "nN" else m.group(1), self.raw)


@dataclass
class Component:
    name: str
    properties: list[Property] = field(default_factory=list)
    children: list[Component] = field(default_factory=list)

    def get(self, name: str) -> str | None:
        found = [p for p in self.properties if p.name == name]
        return found[0].text if found else None

    def all(self, name: str) -> list[Property]:
        return [p for p in self.properties if p.name == name]

    def walk(self, name: str) -> list[Component]:
        found = [c for c in self.children if c.name == name]
        for child in self.children:
            found += child.walk(name)
        return found


def parse(data: bytes) -> Component:
    """The one VCALENDAR in ``data``."""
    if not data.endswith(b"\r\n") or b"\n" in data.replace(b"\r\n", b""):
        raise IcsError("lines must end in CRLF")
    physical = data[:-2].split(b"\r\n")
    for line in physical:
        if len(line) > 75:
            raise IcsError(f"a line longer than 75 octets: {line[:40]!r}...")
    text = data.decode("utf-8")
    lines = re.sub(r"\r\n[ \t]", "", text)[:-2].split("\r\n")
    stack: list[Component] = []
    root: Component | None = None
    for line in lines:
        if _CONTROL.search(line):
            raise IcsError(f"a control character in a line: {line[:60]!r}")
        match = _LINE.fullmatch(line)
        if match is None:
            raise IcsError(f"not a content line: {line[:60]!r}")
        name, params, value = match.group(1).upper(), match.group(2), match.group(3)
        if name == "BEGIN":
            component = Component(value.upper())
            if stack:
                stack[-1].children.append(component)
            elif root is None:
                root = component
            else:
                raise IcsError("more than one top-level component")
            stack.append(component)
        elif name == "END":
            if not stack or stack[-1].name != value.upper():
                raise IcsError(f"END:{value} does not close {stack[-1].name if stack else 'anything'}")
            stack.pop()
        elif not stack:
            raise IcsError(f"a property outside any component: {name}")
        else:
            found = {k.upper(): v[1:-1] if v.startswith('"') else v for k, v in _PARAM.findall(params)}
            stack[-1].properties.append(Property(name, found, value))
    if root is None or stack:
        raise IcsError("an unclosed or missing VCALENDAR")
    return root
