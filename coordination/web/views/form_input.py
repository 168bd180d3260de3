"""From a submitted form to the API's own body, and from a refusal back to the field at fault.

A form is turned into the same msgspec Struct the API decodes (``CaseIn``, ``ContactIn``...),
so that msgspec checks types and sizes as it does for the API and the service then checks
the rules; the page only translates the refusal into words and the id of the field to mark.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

import msgspec
from litestar.datastructures import FormMultiDict

from coordination.errors import InputError
from coordination.web import texts as t

T = TypeVar("T")

#: Where msgspec says the value is: "... - at `$.availability[0].start`".
_AT = re.compile(r"at `\$\.([^`]+)`")
#: The first part of a field's path: "availability" of "availability[0].start".
_TOP = re.compile(r"[\[.]")


def text(data: FormMultiDict, name: str) -> str:
    """A text field as typed, without surrounding spaces (an absent field is empty)."""
    return str(data.get(name) or "").strip()


def checked(data: FormMultiDict, name: str) -> bool:
    return data.get(name) in ("ja", "on", "true")


def top_field(path: str) -> str:
    return _TOP.split(path, maxsplit=1)[0]


def convert(body: Mapping[str, Any], kind: type[T], words: Mapping[str, str]) -> T:
    """``body`` as the API's ``kind``, checked by msgspec exactly as a JSON body is; a refusal
    becomes a ``FormError`` on the field msgspec names, in the words ``words`` has for it."""
    try:
        return msgspec.convert(body, kind)
    except msgspec.ValidationError as error:
        found = _AT.search(str(error))
        path = found.group(1) if found else ""
        raise t.FormError(path, words.get(top_field(path), "Kontroller feltet: verdien er ugyldig.")) from None


def require(value: str, field: str, words: str) -> str:
    """A field the form cannot do without, named before msgspec's general length message."""
    if not value:
        raise t.FormError(field, words)
    return value


def error_pairs(error: InputError, id_of: Callable[[str], str]) -> list[tuple[str, str]]:
    """The error summary's one line: (the id of the form field at fault, the reason in words)."""
    return [(id_of(error.field), t.error_text(error))]


def row_field(path: str, rows: list[int], first: str) -> str:
    """The element id of a field in a repeated row ("availability[1].end" -> "availability-3-end"
    when the API's window 1 came from the form's row 3); ``first`` is the row's field to point at
    when the whole row is at fault."""
    found = re.fullmatch(r"(\w+)\[(\d+)\](?:\.(\w+))?", path)
    if found is None:
        return path
    name, index, part = found.group(1), int(found.group(2)), found.group(3)
    row = rows[index] if index < len(rows) else index
    return f"{name}-{row}-{part or first}"
