"""The ID token checks of ``web.oidc_client`` one by one, with tokens made here (the real
provider of test_oidc.py only ever issues good ones): a token is taken only when signed by the
provider's key with an announced asymmetric algorithm, for this client, from this issuer, not
expired, and with this sign-in's nonce."""

from __future__ import annotations

import time
from typing import Any

import pytest
from joserfc import jwt
from joserfc.jwk import KeySet, OctKey, RSAKey

from coordination.settings import OidcSettings
from coordination.web.oidc_client import OidcClient, SignInFailed

ISSUER = "https://login.example.org/realms/kommune"
CLIENT_ID = "samhandling"
NONCE = "n-0123456789"
PROVIDERS_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider", "use": "sig", "alg": "RS256"})
OTHER_KEY = RSAKey.generate_key(2048, parameters={"kid": "provider"})


def client() -> OidcClient:
    """A client whose discovery document and keys are already at hand (no network)."""
    made = OidcClient(OidcSettings(issuer=ISSUER, client_id=CLIENT_ID, client_secret="s"), "http://testserver")
    made._metadata = {"issuer": ISSUER, "authorization_endpoint": f"{ISSUER}/auth",
                      "token_endpoint": f"{ISSUER}/token", "jwks_uri": f"{ISSUER}/certs",
                      "id_token_signing_alg_values_supported": ["RS256"]}
    made._metadata_at = time.monotonic()
    made._keys = KeySet.import_key_set({"keys": [PROVIDERS_KEY.as_dict(private=False)]})
    return made


def token(key: Any = PROVIDERS_KEY, alg: str = "RS256", **changes: Any) -> str:
    now = int(time.time())
    claims = {"iss": ISSUER, "aud": CLIENT_ID, "sub": "kari-sub", "iat": now, "exp": now + 300, "nonce": NONCE,
              **changes}
    return jwt.encode({"alg": alg, "kid": "provider"}, {k: v for k, v in claims.items() if v is not None}, key)


async def test_a_good_token_gives_its_claims() -> None:
    claims = await client()._verify(token(email="kari@kommune.example.org"), NONCE, None)
    assert claims["sub"] == "kari-sub" and claims["email"] == "kari@kommune.example.org"
    several = await client()._verify(token(aud=[CLIENT_ID, "other"], azp=CLIENT_ID), NONCE, None)
    assert several["sub"] == "kari-sub"


@pytest.mark.parametrize("made", [
    pytest.param(lambda: token(key=OTHER_KEY), id="signed-by-another-key"),
    pytest.param(lambda: token(key=OctKey.import_key("s" * 32), alg="HS256"), id="hmac-with-a-guessable-key"),
    pytest.param(lambda: token(iss="https://evil.example.org"), id="another-issuer"),
    pytest.param(lambda: token(aud="another-client"), id="another-audience"),
    pytest.param(lambda: token(aud=[CLIENT_ID, "other"]), id="several-audiences-without-azp"),
    pytest.param(lambda: token(nonce="another-sign-in"), id="another-nonce"),
    pytest.param(lambda: token(nonce=None), id="no-nonce"),
    pytest.param(lambda: token(exp=int(time.time()) - 120), id="expired"),
    pytest.param(lambda: token(exp=None), id="no-expiry"),
    pytest.param(lambda: token(sub=None), id="no-subject"),
    pytest.param(lambda: token() + "x", id="signature-altered"),
])
async def test_a_bad_token_is_refused(made: Any) -> None:
    with pytest.raises(SignInFailed, match="ID token refused"):
        await client()._verify(made(), NONCE, None)


async def test_the_access_token_hash_must_match_when_present() -> None:
    signed = token(at_hash="AAAAAAAAAAAAAAAAAAAAAA")
    with pytest.raises(SignInFailed, match="ID token refused"):
        await client()._verify(signed, NONCE, "the-access-token")
