"""Telling people: message texts per recipient kind, disclosure level and language,
iMIP e-mail, the SMTP and folder transports, and the outbox dispatcher. It reaches the
outbox and the consent decision through the small interfaces in ``ports``, which
``coordination`` implements; it never imports ``coordination``."""
