"""The case record for the journal and the family's access report, on SQLite and PostgreSQL:
the demo case's record agrees with what the API lists, the PDFs are PDF/A with every font
embedded (checked with pikepdf), and the family's report names no internal note and no partner
their consent never covered."""

from __future__ import annotations

import io
import json
from typing import Any

import pikepdf
from record_scene import Client, Demo

from coordination.domain import AuditAction

NOTE = "Samtykkeerklæring signert på oppstartsmøtet"  # the demo's note on every consent
JSON = {"Accept": "application/json"}


async def _json(client: Client, path: str, headers: dict[str, str]) -> Any:
    answer = await client.get(path, headers=headers)
    assert answer.status_code == 200, answer.text
    return answer.json()


async def test_the_record_of_the_demo_case_matches_the_api(client: Client, demo_case: Demo) -> None:
    case, who = demo_case.case_id, demo_case.coordinator
    record = await _json(client, f"/cases/{case}/record", {**who, **JSON})
    contacts = await _json(client, f"/cases/{case}/contacts", who)
    consents = await _json(client, f"/cases/{case}/consents", who)
    meetings = await _json(client, f"/cases/{case}/meetings", who)
    outbox = await _json(client, f"/cases/{case}/outbox", who)

    assert record["case"]["reference"] == "DEMO-2026-001" and record["case"]["status"] == "open"
    assert [c["id"] for c in record["contacts"]] == [c["id"] for c in contacts]
    assert sorted(e["record_id"] for e in record["consents"]) == sorted(c["id"] for c in consents)
    assert all(e["recorded_by"] == "Kari Koordinator" and e["form"] == "written" for e in record["consents"])
    assert [m["id"] for m in record["meetings"]] == [m["id"] for m in meetings]
    invited = {m["id"]: sorted(p["contact_id"] for p in m["participants"]) for m in meetings}
    assert {m["id"]: sorted(i["contact_id"] for i in m["invitees"]) for m in record["meetings"]} == invited
    sent = [o for o in outbox if o["status"] == "sent"]
    mails = [d for d in record["disclosures"] if d["channel"] in ("email", "sms")]
    assert len(mails) == len(sent) > 0
    for channel in ("email", "sms"):  # each send by the channel it went by
        assert len([d for d in mails if d["channel"] == channel]) == len([o for o in sent if o["channel"] == channel])
    suppressed = [o for o in outbox if o["status"] == "suppressed"]
    assert sorted(s["outbox_id"] for s in record["suppressions"]) == sorted(o["id"] for o in suppressed)
    # NAV has no consent in the demo: its invitations were stopped, with the rule in words.
    nav = await demo_case.contact(client, "Nils NAV")
    assert all(d["recipient_contact_id"] != nav for d in record["disclosures"])
    assert any(s["recipient_contact_id"] == nav and s["code"] == "no_consent" and s["reasons"]
               for s in record["suppressions"])
    # Every disclosure to a partner rests on consent records of the case.
    consent_ids = {c["id"] for c in consents}
    partners = [d for d in mails if d["sector"] in ("school", "health")]
    assert partners and all(d["consent_record_ids"] and set(d["consent_record_ids"]) <= consent_ids for d in partners)
    assert len(record["plan_revisions"]) == 1 and record["plan_revisions"][0]["measures"]

    log = await _json(client, f"/cases/{case}/audit?limit=1000", who)
    produced = [e for e in log if e["action"] == AuditAction.RECORD_PRODUCED]
    assert produced and produced[0]["detail"] == {"format": "json"}
    again = await _json(client, f"/cases/{case}/record", {**demo_case.leader, **JSON})
    assert len(again["disclosures"]) == len(record["disclosures"]), "producing the record shares nothing"


def _check_pdf_a(data: bytes) -> pikepdf.Pdf:
    """PDF/A identification in the XMP metadata, and every font of every page embedded."""
    pdf = pikepdf.open(io.BytesIO(data))
    with pdf.open_metadata() as meta:
        assert meta.get("pdfaid:part") == "3" and meta.get("pdfaid:conformance") == "B"
    fonts = 0
    for page in pdf.pages:
        for font in page.Resources.get("/Font", {}).values():
            for part in [font, *font.get("/DescendantFonts", [])]:
                descriptor = part.get("/FontDescriptor")
                if descriptor is not None:
                    fonts += 1
                    assert any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3")), part.BaseFont
    assert fonts > 0
    assert "/OutputIntents" in pdf.Root
    return pdf


async def test_the_record_and_the_report_are_pdf_a_with_their_fonts_embedded(client: Client, demo_case: Demo) -> None:
    case, who = demo_case.case_id, demo_case.coordinator
    answer = await client.get(f"/cases/{case}/record", headers=who)
    assert answer.status_code == 200 and answer.headers["content-type"] == "application/pdf"
    assert answer.headers["content-disposition"] == 'attachment; filename="journalutskrift-DEMO-2026-001.pdf"'
    pdf = _check_pdf_a(answer.content)
    assert len(pdf.pages) >= 3
    attached = json.loads(pdf.attachments["journalutskrift.json"].get_file().read_bytes())
    assert attached["case"]["reference"] == "DEMO-2026-001" and len(attached["meetings"]) > 10

    report = await client.get(f"/cases/{case}/access-report?lang=nn", headers=who)
    assert report.status_code == 200 and report.headers["content-type"] == "application/pdf"
    _check_pdf_a(report.content)


async def test_the_family_report_names_no_note_and_no_partner_their_consent_never_covered(
    client: Client, demo_case: Demo
) -> None:
    case, who = demo_case.case_id, demo_case.coordinator
    father, nav = await demo_case.contact(client, "Per Hansen"), await demo_case.contact(client, "Nils NAV")
    refused = await client.post(f"/cases/{case}/consents", headers=who, json={
        "grantor_contact_id": father, "sector": "nav", "status": "refused", "form": "oral",
        "note": "Intern: far vil ikke at NAV skal vite om saken"})
    assert refused.status_code == 201, refused.text
    feed = await client.post(f"/cases/{case}/feeds", headers=who, json={"scope": "contact", "contact_id": nav})
    token = feed.json()["token"]
    assert (await client.get(f"/feeds/{token}.ics")).status_code == 200  # served, showing NAV nothing

    texts = {}
    for lang in ("nb", "nn", "en"):
        report = await _json(client, f"/cases/{case}/access-report?lang={lang}", {**who, **JSON})
        texts[lang] = " ".join(line["text"] for line in [*report["shared"], *report["consents"]])
        words = " ".join(report["words"].values())
        assert report["language"] == lang and report["reference"] == "DEMO-2026-001"
        assert "NAV" not in texts[lang] + words, "a partner the family never consented to is not named"
        assert "Intern" not in texts[lang] and NOTE not in texts[lang], "internal notes are left out"
    assert "Skolen (Siri Lærer) fikk vite tid og sted for oppstartsmøtet 11. januar, fordi dere samtykket 3. januar." \
        in texts["nb"]
    assert "Helsetjenesten (Hanne Helsesykepleier) fikk vite tid og sted" in texts["nb"]
    assert "Mona Hansen (mor) samtykket skriftlig til at skolen kan få vite tid, sted og hva møtet gjaldt." \
        in texts["nb"]
    assert "Skulen (Siri Lærer) fekk vite tid og stad for oppstartsmøtet 11. januar, fordi de samtykte 3. januar." \
        in texts["nn"]
    assert ("The school (Siri Lærer) was told the time and place of the start-up meeting on 11 January, because "
            "you consented on 3 January.") in texts["en"]

    log = await _json(client, f"/cases/{case}/audit?limit=1000", who)
    assert [e["detail"]["language"] for e in log if e["action"] == AuditAction.ACCESS_REPORT_PRODUCED] == [
        "en", "nn", "nb"]


async def test_a_case_you_may_not_see_has_no_record_like_one_that_does_not_exist(
    client: Client, demo_case: Demo, people: Any
) -> None:
    case = demo_case.case_id
    missing = 2_000_000
    for path in ("record", "access-report"):
        theirs = await client.get(f"/cases/{case}/{path}", headers=people.stranger.headers)
        none = await client.get(f"/cases/{missing}/{path}", headers=people.stranger.headers)
        assert theirs.status_code == none.status_code == 404
        assert theirs.json()["detail"] == f"case {case} not found"
        assert none.json()["detail"] == f"case {missing} not found"
    for path in ("close", "reopen"):
        assert (await client.post(f"/cases/{case}/{path}", headers=people.stranger.headers)).status_code == 404
    bad = await client.get(f"/cases/{case}/access-report?lang=se", headers=demo_case.coordinator)
    assert bad.status_code == 400 and bad.json()["field"] == "lang"
