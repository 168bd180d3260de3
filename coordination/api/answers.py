"""The page behind the accept/decline link, in the participant's language (no sign-in:
the link is the capability). Works without JavaScript; one form, two buttons."""

from __future__ import annotations

from html import escape
from zoneinfo import ZoneInfo

from litestar import Controller, MediaType, Response, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath

from coordination import answers
from coordination.api.deps import Ctx
from coordination.domain import Language
from notifications.messages import format_when

OSLO = ZoneInfo("Europe/Oslo")

_TEXTS = {
    Language.NB: {"title": "Svar på møteinnkalling", "when": "Tid", "where": "Sted", "yes": "Jeg kommer",
                  "no": "Jeg kan ikke komme", "maybe": "Kanskje", "your": "Ditt svar",
                  "accepted": "Du kommer", "declined": "Du kan ikke komme", "tentative": "Kanskje",
                  "needs_action": "Ikke svart ennå", "cancelled": "Møtet er avlyst."},
    Language.NN: {"title": "Svar på møteinnkalling", "when": "Tid", "where": "Stad", "yes": "Eg kjem",
                  "no": "Eg kan ikkje kome", "maybe": "Kanskje", "your": "Svaret ditt",
                  "accepted": "Du kjem", "declined": "Du kan ikkje kome", "tentative": "Kanskje",
                  "needs_action": "Ikkje svart enno", "cancelled": "Møtet er avlyst."},
    Language.EN: {"title": "Reply to a meeting invitation", "when": "Time", "where": "Place",
                  "yes": "I will come", "no": "I cannot come", "maybe": "Maybe", "your": "Your answer",
                  "accepted": "You will come", "declined": "You cannot come", "tentative": "Maybe",
                  "needs_action": "Not answered yet", "cancelled": "The meeting is cancelled."},
}


def _page(view: answers.AnswerView, token: str) -> Response[str]:
    t = _TEXTS[view.language]
    when = escape(format_when(view.start, view.end, view.language))
    body = [f"<h1>{t['title']}</h1>", f"<p><strong>{t['when']}:</strong> {when}</p>"]
    if view.place:
        body.append(f"<p><strong>{t['where']}:</strong> {escape(view.place)}</p>")
    if view.status == "cancelled":
        body.append(f"<p>{t['cancelled']}</p>")
    else:
        body.append(f"<p>{t['your']}: <strong>{t[view.answer]}</strong></p>")
        body.append(
            f'<form method="post" action="/answer/{escape(token)}">'
            f'<button name="answer" value="accepted">{t["yes"]}</button> '
            f'<button name="answer" value="declined">{t["no"]}</button> '
            f'<button name="answer" value="tentative">{t["maybe"]}</button></form>'
        )
    html = (
        f'<!doctype html><html lang="{view.language.value}"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="robots" content="noindex"><meta name="referrer" content="no-referrer">'
        f"<title>{t['title']}</title>"
        "<style>body{font-family:system-ui,sans-serif;max-width:36rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1rem;padding:.6rem 1rem;margin:.3rem 0}button:focus{outline:3px solid #000}</style>"
        f"</head><body><main>{''.join(body)}</main></body></html>"
    )
    return Response(html, media_type=MediaType.HTML,
                    headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"})


class AnswerController(Controller):
    path = "/answer"
    tags = ["answers"]

    @get("/{token:str}", include_in_schema=True)
    async def show(self, ctx: Ctx, token: FromPath[str]) -> Response[str]:
        async with ctx.transaction() as session:
            return _page(await answers.view(session, token), token)

    @post("/{token:str}", status_code=200)
    async def submit(self, ctx: Ctx, token: FromPath[str],
                     data: dict[str, str] = Body(media_type=RequestEncodingType.URL_ENCODED)) -> Response[str]:
        async with ctx.transaction() as session:
            view = await answers.answer(session, token, data.get("answer", ""), ctx.now())
        return _page(view, token)
