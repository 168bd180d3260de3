"""The notifications dispatcher wired to this service's store, gate and transport."""

from __future__ import annotations

from datetime import timedelta

from coordination.channel_settings import SmsGatewayKind, SmsSettings
from coordination.consent.gate import ConsentGate
from coordination.context import ServiceContext
from coordination.outbox.store import SqlOutboxStore
from notifications.dispatcher import Dispatcher, DispatchSettings
from notifications.email import MailSettings
from notifications.sms import FolderSmsGateway, SmsGateway, SveveGateway
from notifications.transport import Transport, select_transport


def select_sms_gateway(settings: SmsSettings) -> SmsGateway:
    """The gateway SAMHANDLING_SMS_GATEWAY names; without one, a file a message in SMS_FOLDER."""
    if settings.gateway is SmsGatewayKind.SVEVE:
        return SveveGateway(settings.sveve)
    return FolderSmsGateway(settings.folder)


def build_dispatcher(ctx: ServiceContext, transport: Transport | None = None, *,
                     dispatch_settings: DispatchSettings | None = None, sms: SmsGateway | None = None) -> Dispatcher:
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
            in_flight=settings.dispatch_in_flight,
            # Stop using a claim well before another instance may take it over.
            lease_margin=min(timedelta(seconds=60), lease / 5),
            sms_day_start=settings.sms.day_start,
            sms_day_end=settings.sms.day_end,
            sms_level_cap=settings.sms.level_cap,
        ),
        sms=sms or select_sms_gateway(settings.sms),
    )
