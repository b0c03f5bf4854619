"""API key: with a key (`--api-key-file`, `WSD_SERVE_API_KEY` or `--api-key`), every
route but `/health` needs `Authorization: Bearer <key>`. Checked before routing, so an
unknown route without the key is a 401 too (nothing about the API is shown to a client
without it).

The key is compared as SHA-256 digests with `hmac.compare_digest`: the time taken
depends on neither the key's length nor how much of it a guess got right. The scheme
word is case-insensitive (`bearer` works), as HTTP defines it.
"""

from __future__ import annotations

import hashlib
import hmac
import json

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_body

#: Routes open without the key: load balancers and scripts poll it.
OPEN_PATHS = frozenset({"/health"})


def _digest(key: bytes) -> bytes:
    return hashlib.sha256(key).digest()


def bearer_token(header: bytes | None) -> bytes | None:
    """The token of an `Authorization: Bearer <token>` header, or None."""
    if header is None:
        return None
    scheme, _, token = header.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return None
    return token.strip()


class RequireApiKey:
    def __init__(self, app: ASGIApp, api_key: str) -> None:
        self.app = app
        self._expected = _digest(api_key.encode())

    def accepts(self, header: bytes | None) -> bool:
        token = bearer_token(header)
        # Compared even without a token, so a missing key costs the same time.
        return hmac.compare_digest(_digest(token or b""), self._expected) and token is not None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path") in OPEN_PATHS:
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization")
        if self.accepts(given):
            await self.app(scope, receive, send)
            return
        message = ("missing API key: send the header 'Authorization: Bearer <key>'" if given is None
                   else "invalid API key (the header 'Authorization: Bearer <key>' must carry "
                        "the key the server was started with)")
        body = json.dumps(error_body(message, code="invalid_api_key")).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b"Bearer")]})
        await send({"type": "http.response.body", "body": body})
