"""The service and its state: settings, the Litestar app (the composition root),
database and migrations, cases, contacts, consent and the information-loop policy,
plans, meetings, users and access control, audit, the HTTP API and the command line."""
