"""Disclosure levels, ordered: none < logistics < purpose < content (DESIGN.md rule 3).

Defined once in ``notifications.ports`` (the lowest package that needs them); the
policy and the API use the same enum under the name ``Level``.
"""

from notifications.ports import DisclosureLevel as Level

__all__ = ["Level"]
