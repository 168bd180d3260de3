"""Consent: the policy (the one place that decides "may X learn Y now"), the facts it reads, the
register, disclosure levels, the send-time gate, information loops and reason texts.
"""
