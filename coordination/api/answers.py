"""The page behind the accept/decline link, in the participant's language (no sign-in:
the link is the capability, and as the form posts back to that same unguessable address it
needs no other CSRF token). Works without JavaScript; one form, three buttons."""

from __future__ import annotations

from typing import Annotated
from zoneinfo import ZoneInfo

from litestar import Controller, get, post
from litestar.enums import RequestEncodingType
from litestar.params import Body, FromPath
from litestar.response import Template

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


def _page(view: answers.AnswerView, token: str) -> Template:
    """The page itself is ``templates/answer.html``: time and place, nothing more."""
    return Template(
        template_name="answer.html",
        context={
            "lang": view.language.value, "t": _TEXTS[view.language], "token": token,
            "when": format_when(view.start, view.end, view.language), "place": view.place,
            "cancelled": view.status == "cancelled", "answer": view.answer,
        },
        headers={"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
                 "Content-Security-Policy": "default-src 'self'; script-src 'none'; form-action 'self'; "
                                            "base-uri 'none'; frame-ancestors 'none'",
                 "X-Content-Type-Options": "nosniff"},
    )


class AnswerController(Controller):
    path = "/answer"
    tags = ["answers"]

    @get("/{token:str}", include_in_schema=True)
    async def show(self, ctx: Ctx, token: FromPath[str]) -> Template:
        async with ctx.transaction() as session:
            return _page(await answers.view(session, token), token)

    @post("/{token:str}", status_code=200)
    async def submit(self, ctx: Ctx, token: FromPath[str],
                     data: Annotated[dict[str, str], Body(media_type=RequestEncodingType.URL_ENCODED)]
                     ) -> Template:
        async with ctx.transaction() as session:
            view = await answers.answer(session, token, data.get("answer", ""), ctx.now())
        return _page(view, token)
