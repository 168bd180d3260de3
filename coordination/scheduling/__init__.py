"""Plans, meetings, answers, answer links and slot search."""
