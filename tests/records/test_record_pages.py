"""The pages at the end of a case, over HTTP as a browser without JavaScript sends them, on SQLite
and PostgreSQL: "Journal og avslutning" with the record's parts and its PDF, the family's
"Innsynsrapport" in the three languages, and closing and reopening with the same rules as the API."""

from __future__ import annotations

import html
import re
from typing import Any

from record_scene import Client, Demo

CSRF = re.compile(r'name="_csrf" value="([^"]+)"')


def _text(page: str) -> str:
    main = page[page.index("<main"):page.index("</main>")]
    return " ".join(html.unescape(re.sub(r"<[^>]+>", " ", main)).split())


async def _sign_in(client: Client, headers: dict[str, str]) -> None:
    client.cookies.clear()
    form = await client.get("/logg-inn")
    token = headers["Authorization"].removeprefix("Bearer ")
    answer = await client.post("/logg-inn", data={"_csrf": CSRF.findall(form.text)[0], "token": token},
                               follow_redirects=False)
    assert answer.status_code == 303, answer.text


async def _submit(client: Client, page: str, action: str, data: dict[str, str]) -> Any:
    shown = await client.get(page)
    assert shown.status_code == 200, shown.text
    return await client.post(action, data={"_csrf": CSRF.findall(shown.text)[0], **data}, follow_redirects=False)


async def test_the_journal_page_offers_the_record_and_closes_and_reopens_the_case(
    client: Client, demo_case: Demo
) -> None:
    case = demo_case.case_id
    await _sign_in(client, demo_case.coordinator)
    page = await client.get(f"/saker/{case}/journal")
    assert page.status_code == 200
    words = _text(page.text)
    assert "Saken er åpen" in words and "Journalutskrift" in words and "Kontakter 10" in words
    assert "Møter 14" in words and "14 møter fram i tid avlyses" in words
    assert 'aria-current="page">Journal og avslutning' in page.text
    pdf = await client.get(f"/saker/{case}/journal/journalutskrift.pdf")
    assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF-")
    assert pdf.headers["content-type"] == "application/pdf"

    unconfirmed = await _submit(client, f"/saker/{case}/journal", f"/saker/{case}/avslutt", {})
    assert unconfirmed.status_code == 400 and "Kryss av for at du vil avslutte saken" in unconfirmed.text
    closed = await _submit(client, f"/saker/{case}/journal", f"/saker/{case}/avslutt", {"bekreft": "ja"})
    assert closed.status_code == 303 and closed.headers["location"] == f"/saker/{case}/journal?melding=avsluttet"
    words = _text((await client.get(closed.headers["location"])).text)
    assert "Saken er avsluttet." in words and "Saken er avsluttet" in words and "4. april 2027" in words
    assert "Gjenåpne saken" in words
    again = await _submit(client, f"/saker/{case}/journal", f"/saker/{case}/avslutt", {"bekreft": "ja"})
    assert again.status_code == 400 and "Saken er allerede avsluttet." in again.text
    reopened = await _submit(client, f"/saker/{case}/journal", f"/saker/{case}/gjenapne", {})
    assert reopened.status_code == 303 and reopened.headers["location"].endswith("melding=gjenapnet")
    assert "Saken er åpen" in _text((await client.get(f"/saker/{case}/journal")).text)


async def test_the_access_report_page_in_the_familys_language(client: Client, demo_case: Demo, people: Any) -> None:
    case = demo_case.case_id
    await _sign_in(client, demo_case.coordinator)
    nb = _text((await client.get(f"/saker/{case}/innsyn")).text)
    assert "Innsyn: hva som er delt om dere" in nb and "Skolen (Siri Lærer) fikk vite tid og sted" in nb
    assert "sikre kanal" in nb and "Nils NAV" not in nb
    nn = _text((await client.get(f"/saker/{case}/innsyn?sprak=nn")).text)
    assert "Innsyn: kva som er delt om dykk" in nn and "Skulen (Siri Lærer) fekk vite tid og stad" in nn
    en = await client.get(f"/saker/{case}/innsyn/innsyn.pdf?sprak=en")
    assert en.status_code == 200 and en.headers["content-disposition"].endswith('innsyn-en-DEMO-2026-001.pdf"')
    assert (await client.get(f"/saker/{case}/innsyn?sprak=xx")).status_code == 400

    await _sign_in(client, people.stranger.headers)
    for path in ("journal", "journal/journalutskrift.pdf", "innsyn"):
        assert (await client.get(f"/saker/{case}/{path}")).status_code == 404
