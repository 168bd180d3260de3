"""What comes back to the ORGANIZER mailbox: calendar answers, proposed times and bounces."""
