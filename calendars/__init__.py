"""Pure calendar computations: the meeting series a plan implies, the slot finder,
Norwegian holidays and iCalendar rendering. No database, no HTTP: plain data in,
plain data out, so that every rule here can be tested with golden files."""
