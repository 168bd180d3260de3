"""Disclosure levels, ordered: none < logistics < purpose < content (DESIGN.md rule 3)."""

from __future__ import annotations

import enum


class Level(enum.StrEnum):
    NONE = "none"
    LOGISTICS = "logistics"
    PURPOSE = "purpose"
    CONTENT = "content"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, Level):
            return NotImplemented
        return self.rank >= other.rank


_RANK = {Level.NONE: 0, Level.LOGISTICS: 1, Level.PURPOSE: 2, Level.CONTENT: 3}
