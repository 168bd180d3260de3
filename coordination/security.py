"""Capability tokens: random, ≥128 bits, shown once, stored only as a SHA-256 hash.

A plain (unsalted) SHA-256 is enough here because the tokens are 256 random bits, not
passwords: nobody can guess one to test against a hash, and it lets us look a token up
by its hash with an index.
"""

from __future__ import annotations

import hashlib
import secrets


def new_token() -> str:
    return secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
