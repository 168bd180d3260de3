"""The end of a case: its record for the journal and for the family's access request, closing
and reopening it, and deleting its personal data once the retention period has passed
(DESIGN.md "The case record and retention")."""
