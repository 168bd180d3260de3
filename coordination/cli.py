"""The ``samhandling`` command: serve, migrate, create-user, purge, reply."""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

from coordination import logs
from coordination.domain import UserRole
from coordination.settings import PREFIX, Settings


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from coordination.app import create_app
    from coordination.context import ServiceContext

    if args.port and PREFIX + "PUBLIC_BASE_URL" not in os.environ:
        # Links in feeds and mail must point where this instance actually listens.
        settings = replace(settings, public_base_url=f"http://{args.host or settings.host}:{args.port}")
    hooks = []
    if args.demo:
        async def seed_demo(ctx: ServiceContext) -> None:
            from coordination import demo

            async with ctx.transaction() as session:
                info = await demo.seed(session, ctx.now())
            base = settings.public_base_url
            print(
                "\nSamhandling kjører med en demosak.\n"
                f"  Nettsiden:         {base}/logg-inn  (logg inn med koordinator-tokenet under)\n"
                f"  Demosaken på nett: {base}/saker/{info.case_id}\n"
                f"  API-dokumentasjon: {base}/schema\n"
                f"  Demosaken:         {base}/cases/{info.case_id}\n"
                f"  Informasjonssløyfer: {base}/cases/{info.case_id}/information-loops\n"
                f"  Token (koordinator): {info.coordinator_token}\n"
                f"  Token (leder):       {info.leader_token}\n"
                f"  Token (admin):       {info.admin_token}\n"
                f"  Prøv: curl -H 'Authorization: Bearer {info.coordinator_token}' "
                f"{base}/cases/{info.case_id}/information-loops\n",
                flush=True,
            )

        hooks.append(seed_demo)
    app = create_app(settings, on_startup=hooks)
    run_server(app, settings, args.host or settings.host, args.port or settings.port)
    return 0


def run_server(app: Callable[..., Awaitable[None]], settings: Settings, host: str, port: int) -> None:
    """The server and options ``serve`` runs an app with (the feed benchmark runs its bare
    reference app through here too, so that both stand on the same floor)."""
    import uvicorn

    # httptools and uvloop, named rather than left to "auto", which falls back to h11 and
    # asyncio without a word: side by side with those and with granian (bench/servers.py),
    # they spent the least CPU per feed answer, a third of h11's on a 304.
    # uvicorn trusts X-Forwarded-For from exactly the proxies the rate limiter trusts (never
    # its own default, 127.0.0.1, nor FORWARDED_ALLOW_IPS): one setting decides who the client is.
    uvicorn.run(app, host=host, port=port, http="httptools", loop="uvloop", log_level=settings.log_level.lower(),
                access_log=False, forwarded_allow_ips=list(settings.trusted_proxies),
                log_config=logs.uvicorn_log_config(settings.log_format))


def _migrate(_: argparse.Namespace, settings: Settings) -> int:
    from coordination.migrate import upgrade

    upgrade(settings.database_url)
    print("database is up to date")
    return 0


def _create_user(args: argparse.Namespace, settings: Settings) -> int:
    import msgspec

    from coordination.access import users
    from coordination.access.oidc import expect_pid, valid_pid
    from coordination.context import ServiceContext
    from coordination.migrate import upgrade
    from coordination.models import NAME_LENGTH
    from coordination.schemas import UserIn

    # The same checks as the API's, before anything reaches the database.
    if not args.unit.strip() or len(args.unit) > NAME_LENGTH:
        sys.exit(f"--unit: give a name of 1 to {NAME_LENGTH} characters")
    try:
        data = msgspec.convert({"name": args.name, "role": args.role, "email": args.email}, UserIn)
    except msgspec.ValidationError as error:
        sys.exit(f"create-user: {error}")
    if args.pid and not valid_pid(args.pid):
        sys.exit("--pid: give the national identity number as its 11 digits")
    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def run() -> str:
        ctx = ServiceContext.create(settings)
        try:
            async with ctx.transaction() as session:
                unit = await users.get_or_create_unit(session, args.unit, ctx.now())
                assert unit.id is not None
                created = await users.create_user(session, unit.id, data, ctx.now())
                if args.pid:
                    await expect_pid(session, created.user.id, args.pid)
                return f"user {created.user.id} ({args.role}) in unit {unit.id}\ntoken: {created.token}"
        finally:
            await ctx.engine.dispose()

    print(asyncio.run(run()))
    print("The token is shown only now; keep it safe.", file=sys.stderr)
    return 0


def _purge(args: argparse.Namespace, settings: Settings) -> int:
    """Delete the personal data of closed cases whose retention period has passed (the service's
    background scan does the same), or with ``--dry-run`` list what would go."""
    from coordination.context import ServiceContext
    from coordination.migrate import upgrade
    from coordination.records import retention

    if settings.is_sqlite:
        upgrade(settings.database_url)

    async def run() -> tuple[str, list[retention.Purge]]:
        ctx = ServiceContext.create(settings)
        try:
            return ctx.now().isoformat(timespec="minutes"), await retention.purge_due(ctx, dry_run=args.dry_run)
        finally:
            await ctx.engine.dispose()

    now, purges = asyncio.run(run())
    days = settings.retention_days
    if not purges:
        print(f"nothing is due for deletion at {now} (retention {days} days after closing)")
        return 0
    verb = "would delete" if args.dry_run else "deleted"
    for purge in purges:
        print(f"case {purge.case_id} {purge.reference}: closed {purge.closed_at.date()}, due {purge.due_at.date()}; "
              f"{verb}:")
        for table, count in sorted(purge.rows.items()):
            print(f"  {table}: {count} row(s)")
        print(f"  auditentry: the details of {purge.audit_details} entr(y/ies) (the entries stay)")
        print("  case: the child's name, initials and birth date (the row stays as a tombstone)")
    if args.dry_run:
        print("dry run: nothing was deleted")
    return 0


def _reply(args: argparse.Namespace, settings: Settings) -> int:
    from datetime import UTC, datetime
    from pathlib import Path

    from coordination.replies.try_reply import write_reply

    try:
        written = write_reply(Path(args.invitation), args.answer, settings.inbox_folder, datetime.now(UTC))
    except (OSError, ValueError) as error:
        sys.exit(f"reply: {error}")
    print(f"the answer is in {written}; a running service reads it within "
          f"{settings.inbox_interval_seconds:g} seconds")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="samhandling", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    serve = sub.add_parser("serve", help="run the web service")
    serve.add_argument("--demo", action="store_true", help="create the demo case and print tokens")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)
    sub.add_parser("migrate", help="apply database migrations")
    create = sub.add_parser("create-user", help="create a user and print its API token once")
    create.add_argument("--unit", required=True, help="the unit's name (created if new)")
    create.add_argument("--name", required=True)
    create.add_argument("--role", choices=[r.value for r in UserRole], default=UserRole.COORDINATOR)
    create.add_argument("--email", default="",
                        help="the address the identity provider vouches for: the first sign-in is matched by it")
    create.add_argument("--pid", default="",
                        help="national identity number, for the first sign-in with ID-porten or Ansattporten "
                             "(which send no e-mail); erased once the user has signed in")
    purge = sub.add_parser("purge", help="delete the personal data of cases closed longer than the retention period")
    purge.add_argument("--dry-run", action="store_true", help="list what would be deleted, delete nothing")
    answer = sub.add_parser("reply", help="answer an invitation from the mail folder as a calendar would, "
                                          "into the inbox folder (to try the reply path)")
    answer.add_argument("invitation", help="an invitation's .eml file, e.g. from ./var/mail")
    answer.add_argument("--answer", choices=["accepted", "declined", "tentative"], default="accepted")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except ValueError as error:
        parser.error(str(error))
    logs.configure(settings.log_level, settings.log_format)
    handlers = {"serve": _serve, "migrate": _migrate, "create-user": _create_user, "purge": _purge, "reply": _reply}
    return handlers[args.command](args, settings)


if __name__ == "__main__":
    raise SystemExit(main())
