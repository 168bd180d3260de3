"""The outbox: queueing messages, the store the dispatcher claims from, and alerts."""
