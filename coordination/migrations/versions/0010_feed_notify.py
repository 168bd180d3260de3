"""Feed caches told at once, on PostgreSQL, when a change commits that can alter a feed token's
state or a feed's content: a NOTIFY on one channel, its payload the unit id ('' for any unit)

Every instance keeps the token states it served from in process and listens on this channel
(``coordination.feeds.listener``); the notification is sent by the database at commit, so no
writer can forget it. What is watched is what ``coordination.feeds.tokens.token_state`` reads
(the token, its unit, its owner, the case, the case's coordinators, the contact); the feed's
content is covered by the unit row too, as every change to it bumps ``unit.data_version`` in
the same transaction (``coordination.versions``). A token's last-seen time, written every
half minute, alters neither and is not announced.

SQLite has no NOTIFY and one process: there the in-process invalidation is all there is.

Revision ID: 0010
Revises: 0009
Create Date: 2027-01-06 09:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

#: The channel ``coordination.feeds.listener.CHANNEL`` listens on.
CHANNEL = 'samhandling_feeds'

# Rows of user and casecoordinator do not name the unit of the tokens they concern (a user
# may have moved unit since they made a feed, an assignment names a case): those changes are
# rare, and announced for every unit ('').
_FUNCTION = f"""
CREATE FUNCTION samhandling_feed_notify() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    r record;
BEGIN
    FOREACH r IN ARRAY (CASE TG_OP WHEN 'INSERT' THEN ARRAY[NEW] WHEN 'DELETE' THEN ARRAY[OLD]
                        ELSE ARRAY[OLD, NEW] END) LOOP
        IF TG_TABLE_NAME IN ('user', 'casecoordinator') THEN
            PERFORM pg_notify('{CHANNEL}', '');
        ELSIF TG_TABLE_NAME = 'unit' THEN
            PERFORM pg_notify('{CHANNEL}', r.id::text);
        ELSIF TG_TABLE_NAME = 'contact' THEN
            PERFORM pg_notify('{CHANNEL}', COALESCE(
                (SELECT c.unit_id::text FROM "case" c WHERE c.id = r.case_id), ''));
        ELSE
            PERFORM pg_notify('{CHANNEL}', r.unit_id::text);
        END IF;
    END LOOP;
    RETURN NULL;
END
$$
"""

#: Table and the trigger's WHEN clause (for UPDATE only).
_WATCHED: dict[str, str] = {
    'feedtoken': "(to_jsonb(OLD) - 'last_seen_at') IS DISTINCT FROM (to_jsonb(NEW) - 'last_seen_at')",
    'unit': '',
    'user': '',
    'case': '',
    'casecoordinator': '',
    'contact': '',
}


def upgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    op.execute(_FUNCTION)
    for table, changed in _WATCHED.items():
        # Two triggers where UPDATE has a condition (a trigger's WHEN applies to all its events).
        events = ['INSERT OR DELETE', 'UPDATE'] if changed else ['INSERT OR UPDATE OR DELETE']
        for number, event in enumerate(events):
            when = f' WHEN ({changed})' if event == 'UPDATE' and changed else ''
            op.execute(
                f'CREATE TRIGGER samhandling_feed_notify_{number} AFTER {event} ON "{table}" '
                f'FOR EACH ROW{when} EXECUTE FUNCTION samhandling_feed_notify()'
            )


def downgrade() -> None:
    if op.get_bind().dialect.name != 'postgresql':
        return
    for table, changed in _WATCHED.items():
        for number in range(2 if changed else 1):
            op.execute(f'DROP TRIGGER IF EXISTS samhandling_feed_notify_{number} ON "{table}"')
    op.execute('DROP FUNCTION IF EXISTS samhandling_feed_notify()')
