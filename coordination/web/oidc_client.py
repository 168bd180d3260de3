"""The service as an OpenID Connect client of the municipality's identity provider (authlib).

Authorization code flow with PKCE (S256), ``state`` and ``nonce``. The provider's discovery
document (``{issuer}/.well-known/openid-configuration``) says where everything is; it is kept
for an hour, the signing keys (JWKS) until a token names a key they lack. An ID token is taken
only when its signature verifies with one of those keys and an asymmetric algorithm the
provider announces, and its ``iss``, ``aud`` (and ``azp``), ``exp``, ``iat``, ``nonce`` and
``at_hash`` are right.

Token times are checked against the wall clock, not the service clock: the provider stamps them
with the real time, and the service clock may run elsewhere (``SAMHANDLING_CLOCK_START``).
Nothing here touches the database or the pages (``web.oidc`` does).
"""

from __future__ import annotations

import logging
import time
from typing import Any
from urllib.parse import urlencode

import httpx2
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.httpx_client import AsyncOAuth2Client
from authlib.oidc.core import CodeIDToken
from joserfc import jwt
from joserfc.errors import InvalidKeyIdError, JoseError
from joserfc.jwk import KeySet

from coordination.settings import OidcSettings, Settings

log = logging.getLogger("samhandling.oidc")

#: Where the provider sends the browser back after sign-in and after sign-out.
CALLBACK_PATH = "/logg-inn/callback"
SIGNED_OUT_PATH = "/logget-ut"
METADATA_SECONDS = 3600.0
TIMEOUT_SECONDS = 10.0
#: Clock skew allowed between the provider and this machine.
LEEWAY_SECONDS = 60


class ProviderUnavailable(Exception):
    """The identity provider could not be reached, or answered with a server error."""


class SignInFailed(Exception):
    """The provider's answer cannot be trusted or used (a code already used, a bad token ...)."""


class OidcClient:
    """One provider and one client registration; shared by the requests of a process."""

    def __init__(self, settings: OidcSettings, public_base_url: str) -> None:
        self.settings = settings
        self.redirect_uri = public_base_url + CALLBACK_PATH
        self.post_logout_redirect_uri = public_base_url + SIGNED_OUT_PATH
        self._metadata: dict[str, Any] = {}
        self._metadata_at = 0.0
        self._keys: KeySet | None = None

    def _http(self, metadata: dict[str, Any] | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.settings.client_id,
            client_secret=self.settings.client_secret or None,
            token_endpoint_auth_method=_auth_method(self.settings, metadata or {}),
            scope=self.settings.scopes,
            redirect_uri=self.redirect_uri,
            code_challenge_method="S256",
            timeout=TIMEOUT_SECONDS,
        )

    async def _get(self, url: str, **kwargs: Any) -> dict[str, Any]:
        try:
            async with self._http() as http:
                response = await http.request("GET", url, withhold_token=True, **kwargs)
        except httpx2.HTTPError as error:
            raise ProviderUnavailable(f"{url}: {type(error).__name__}") from error
        if response.status_code >= 500:
            raise ProviderUnavailable(f"{url}: {response.status_code}")
        try:
            response.raise_for_status()
            body = response.json()
        except (httpx2.HTTPError, ValueError) as error:
            raise SignInFailed(f"{url}: {type(error).__name__}") from error
        if not isinstance(body, dict):
            raise SignInFailed(f"{url}: not a JSON object")
        return body

    async def metadata(self) -> dict[str, Any]:
        """The discovery document; its ``issuer`` must be exactly the configured one (OIDC Discovery 4.3)."""
        if not self._metadata or time.monotonic() - self._metadata_at > METADATA_SECONDS:
            found = await self._get(self.settings.issuer.rstrip("/") + "/.well-known/openid-configuration")
            if found.get("issuer") != self.settings.issuer:
                raise SignInFailed(f"the discovery document names another issuer: {found.get('issuer')!r}")
            for name in ("authorization_endpoint", "token_endpoint", "jwks_uri"):
                if not isinstance(found.get(name), str):
                    raise SignInFailed(f"the discovery document has no {name}")
            self._metadata, self._metadata_at = found, time.monotonic()
        return self._metadata

    async def authorization_url(self, state: str, nonce: str, code_verifier: str) -> str:
        metadata = await self.metadata()
        async with self._http(metadata) as http:
            url, _ = http.create_authorization_url(metadata["authorization_endpoint"], state=state,
                                                   code_verifier=code_verifier, nonce=nonce)
        return str(url)

    async def redeem(self, code: str, code_verifier: str, nonce: str) -> tuple[dict[str, Any], str]:
        """Exchange the code for tokens; returns the verified ID token's claims (completed from
        the userinfo endpoint when they hold neither an e-mail nor a ``pid``) and the ID token."""
        metadata = await self.metadata()
        try:
            async with self._http(metadata) as http:
                tokens = await http.fetch_token(metadata["token_endpoint"], code=code, code_verifier=code_verifier)
        except httpx2.HTTPError as error:
            raise ProviderUnavailable(f"token endpoint: {type(error).__name__}") from error
        except (AuthlibBaseError, ValueError) as error:
            raise SignInFailed(f"token endpoint: {error}") from error
        id_token, access_token = tokens.get("id_token"), tokens.get("access_token")
        if not isinstance(id_token, str):
            raise SignInFailed("the token answer has no ID token")
        claims = await self._verify(id_token, nonce, access_token if isinstance(access_token, str) else None)
        if "email" not in claims and "pid" not in claims and isinstance(access_token, str):
            claims = {**await self._userinfo(access_token, claims["sub"]), **claims}
        return claims, id_token

    async def _verify(self, id_token: str, nonce: str, access_token: str | None) -> dict[str, Any]:
        metadata = await self.metadata()
        algorithms = [a for a in metadata.get("id_token_signing_alg_values_supported") or ["RS256"]
                      if isinstance(a, str) and a != "none" and not a.startswith("HS")]
        try:
            try:
                token = jwt.decode(id_token, await self._jwks(refresh=False), algorithms=algorithms)
            except InvalidKeyIdError:  # the provider rolled its keys over since we fetched them
                token = jwt.decode(id_token, await self._jwks(refresh=True), algorithms=algorithms)
            claims = CodeIDToken(token.claims, token.header, {
                "iss": {"essential": True, "value": self.settings.issuer},
                "aud": {"essential": True, "value": self.settings.client_id},
                "sub": {"essential": True},
                "exp": {"essential": True},
            }, {"nonce": nonce, "client_id": self.settings.client_id, "access_token": access_token})
            claims.validate(leeway=LEEWAY_SECONDS)
        except (JoseError, ValueError) as error:
            raise SignInFailed(f"ID token refused: {type(error).__name__}: {error}") from error
        if not isinstance(claims.get("sub"), str) or not claims["sub"]:
            raise SignInFailed("ID token refused: no subject")
        return dict(claims)

    async def _jwks(self, refresh: bool) -> KeySet:
        if self._keys is None or refresh:
            metadata = await self.metadata()
            try:
                self._keys = KeySet.import_key_set(await self._get(metadata["jwks_uri"]))  # type: ignore[arg-type]
            except (JoseError, ValueError, TypeError) as error:
                raise SignInFailed(f"the provider's keys cannot be read: {error}") from error
        return self._keys

    async def _userinfo(self, access_token: str, subject: str) -> dict[str, Any]:
        """The userinfo answer, only when it is about the ID token's subject (OIDC Core 5.3.2)."""
        endpoint = (await self.metadata()).get("userinfo_endpoint")
        if not isinstance(endpoint, str):
            return {}
        found = await self._get(endpoint, headers={"Authorization": f"Bearer {access_token}"})
        if found.get("sub") != subject:
            raise SignInFailed("the userinfo answer is about another subject")
        return found

    async def logout_url(self, id_token: str | None) -> str | None:
        """RP-initiated logout at the provider, when it offers it; back here afterwards."""
        endpoint = (await self.metadata()).get("end_session_endpoint")
        if not isinstance(endpoint, str):
            return None
        params = {"client_id": self.settings.client_id, "post_logout_redirect_uri": self.post_logout_redirect_uri}
        if id_token:
            params["id_token_hint"] = id_token
        return endpoint + ("&" if "?" in endpoint else "?") + urlencode(params)


def _auth_method(settings: OidcSettings, metadata: dict[str, Any]) -> str:
    """How the client proves itself at the token endpoint: Basic unless the provider only takes
    the secret in the form; with no secret, a public client (PKCE alone)."""
    if not settings.client_secret:
        return "none"
    supported = metadata.get("token_endpoint_auth_methods_supported") or ["client_secret_basic"]
    return "client_secret_post" if "client_secret_basic" not in supported and "client_secret_post" in supported \
        else "client_secret_basic"


_clients: dict[tuple[OidcSettings, str], OidcClient] = {}


def client_for(settings: Settings) -> OidcClient | None:
    """The process's client for the configured provider, or None when sign-in is by token (the demo)."""
    if settings.oidc is None:
        return None
    key = (settings.oidc, settings.public_base_url)
    if key not in _clients:
        _clients[key] = OidcClient(settings.oidc, settings.public_base_url)
    return _clients[key]
