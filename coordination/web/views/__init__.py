"""What each page shows, one module a page, built from the same service functions the API uses.

Every builder first goes through the API's own access rule (``case_service.get_case`` /
``access.case_for`` and friends), so a page never shows what the API would refuse. The
rest is read-only arrangement for the templates: words, badges and links. The only
decision taken here is a preview — what the consent gate would say *now* about a queued
message — and it is asked of ``consent.gate.decide_for``, the function the gate itself decides
by, which records nothing.
"""
