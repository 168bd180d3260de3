"""The golden inputs (``golden/README.md`` says where each came from), filled in for a test's
meeting: the client's structure is kept, only UIDs, addresses and the answer change."""

from __future__ import annotations

import base64
import quopri
from pathlib import Path

GOLDEN = Path(__file__).parent / "golden"

#: The calendar clients whose answers are read, by sample name.
CLIENTS = ("outlook", "gmail", "apple", "thunderbird")


def _fill(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", value)
    return text


def reply(client: str, *, uid: str, attendee: str, organizer: str, message_id: str, partstat: str = "ACCEPTED",
          sequence: int = 0, calendar_name: str | None = None, **more: str) -> bytes:
    """One client's answer: its calendar object, filled in, placed in its mail as it places it
    (as 8-bit text, base64 or quoted-printable)."""
    values = {"UID": uid, "ATTENDEE": attendee, "ORGANIZER": organizer, "MESSAGE_ID": message_id,
              "PARTSTAT": partstat, "SEQUENCE": str(sequence), "METHOD": "REPLY", **more}
    ics_text = _fill((GOLDEN / (calendar_name or f"{client}-reply.ics")).read_text(), values)
    ics = ics_text.replace("\n", "\r\n").encode("utf-8")
    if "METHOD:COUNTER" in ics_text:
        values["METHOD"] = "COUNTER"
    values["CALENDAR"] = ics_text.strip("\n")
    values["CALENDAR_BASE64"] = "\n".join(base64.encodebytes(ics).decode("ascii").split())
    values["CALENDAR_QP"] = quopri.encodestring(ics).decode("ascii")
    return _fill((GOLDEN / f"{client}-reply.eml").read_text(), values).encode("utf-8")


def message(name: str, **values: str) -> bytes:
    """A bounce or an automatic reply, with our message's id and the failed address filled in."""
    return _fill((GOLDEN / f"{name}.eml").read_text(), values).encode("utf-8")
