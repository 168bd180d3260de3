"""The notifications dispatcher wired to this service's store, gate and transport."""

from __future__ import annotations

from datetime import timedelta

from coordination.consent.gate import ConsentGate
from coordination.context import ServiceContext
from coordination.outbox.store import SqlOutboxStore
from notifications.dispatcher import Dispatcher, DispatchSettings
from notifications.email import MailSettings
from notifications.transport import Transport, select_transport


def build_dispatcher(ctx: ServiceContext, transport: Transport | None = None, *,
                     dispatch_settings: DispatchSettings | None = None) -> Dispatcher:
    """The dispatcher over this service's outbox, gate and configured transport."""
    settings = ctx.settings
    lease = timedelta(seconds=settings.dispatch_lease_seconds)
    return Dispatcher(
        SqlOutboxStore(ctx),
        ConsentGate(ctx),
        transport or select_transport(settings.smtp, settings.mail_folder),
        ctx.now,
        dispatch_settings or DispatchSettings(
            mail=MailSettings(sender_address=settings.mail_from, sender_name=settings.mail_from_name),
            interval=timedelta(seconds=settings.dispatch_interval_seconds),
            lease=lease,
            # Stop using a claim well before another instance may take it over.
            lease_margin=min(timedelta(seconds=60), lease / 5),
        ),
    )
