"""Who may talk to the server: web pages the user opens must not.

A server on 127.0.0.1 is reachable by every web page in the user's browser. Three
checks, before anything else runs, keep those pages out:

- Host: on a loopback bind, a request whose `Host` is not loopback (localhost,
  127.x.y.z, [::1]) is refused. A page that makes its own name resolve to 127.0.0.1
  (DNS rebinding) sends its own name as Host, so it can neither read answers nor
  drive the models. `--allow-host NAME` admits a name (a reverse proxy's, a
  container's); on other binds the check runs only when names are given.
- Origin: browsers name the page behind a request in `Origin`; a request that
  carries one is refused unless the origin is allowed (`--allow-origin`) or is the
  server itself (its own /docs page). Allowed origins get proper CORS answers,
  preflights included.
- Content-Type: a POST must say `application/json`. A page can send a cross-site
  POST with `text/plain` without asking the browser first (no preflight); JSON
  needs a preflight, which the Origin check answers.

Each refusal is an OpenAI-shaped 4xx in one line that says which flag allows it.
"""

from __future__ import annotations

import ipaddress
import json
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import error_body, short_line

LOOPBACK_NAMES = frozenset({"localhost"})
#: `--allow-host *` / `--allow-origin *`: any.
ANY = "*"


@dataclass(frozen=True)
class AccessPolicy:
    check_host: bool = False  # on for a loopback bind, or when hosts are named
    allowed_hosts: frozenset[str] = field(default_factory=frozenset)  # lower case, no port
    allowed_origins: frozenset[str] = field(default_factory=frozenset)  # scheme://host[:port]

    @classmethod
    def for_bind(cls, bind_host: str, allow_hosts: list[str] | tuple[str, ...] = (),
                 allow_origins: list[str] | tuple[str, ...] = ()) -> "AccessPolicy":
        hosts = frozenset(h.strip().lower().strip("[]") for h in allow_hosts)
        origins = frozenset(normalize_origin(o) for o in allow_origins)
        check = ANY not in hosts and (is_loopback(bind_host) or bool(hosts))
        return cls(check_host=check, allowed_hosts=hosts, allowed_origins=origins)

    def host_allowed(self, host_header: str) -> bool:
        if not self.check_host:
            return True
        name = host_name(host_header)
        return name is not None and (is_loopback(name) or name in self.allowed_hosts)

    def origin_allowed(self, origin: str, host_header: str | None) -> bool:
        origin = normalize_origin(origin)
        if ANY in self.allowed_origins or origin in self.allowed_origins:
            return True
        # The server's own pages (/docs): the origin is the address the request went to.
        parts = urlsplit(origin)
        return (parts.scheme == "http" and host_header is not None
                and parts.netloc == host_header.strip().lower())


def is_loopback(name: str) -> bool:
    name = name.strip().lower().strip("[]")
    if name in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def host_name(header: str) -> str | None:
    """The name in a Host header, without the port ("[::1]:8080" -> "::1"); None when it
    is not a well-formed host."""
    header = header.strip().lower()
    if header.startswith("["):
        end = header.find("]")
        if end < 0 or (header[end + 1:] and not _port(header[end + 1:])):
            return None
        return header[1:end]
    name, colon, port = header.partition(":")
    if colon and not port.isdigit():
        return None
    return name or None


def _port(rest: str) -> bool:
    return rest.startswith(":") and rest[1:].isdigit()


def normalize_origin(origin: str) -> str:
    origin = origin.strip().lower()
    return origin[:-1] if origin.endswith("/") else origin


class BrowserGuard:
    """ASGI middleware applying an `AccessPolicy` (outside the API key and CORS)."""

    def __init__(self, app: ASGIApp, policy: AccessPolicy) -> None:
        self.app = app
        self.policy = policy

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        host = headers.get("host")
        origin = headers.get("origin")
        refusal = None
        if host is not None and not self.policy.host_allowed(host):
            refusal = (403, f"Host {host!r} is refused: this server answers on its loopback address "
                            f"only (start it with --allow-host NAME to admit a name)", "host_not_allowed")
        elif origin is not None and not self.policy.origin_allowed(origin, host):
            refusal = (403, f"requests from web pages are refused (Origin {origin!r}); start the "
                            f"server with --allow-origin ORIGIN to admit a page", "origin_not_allowed")
        elif scope.get("method") == "POST" and _media_type(headers.get("content-type")) != "application/json":
            given = headers.get("content-type")
            refusal = (415, f"Content-Type must be application/json, got "
                            f"{'none' if given is None else repr(given)}", "unsupported_media_type")
        if refusal is None:
            await self.app(scope, receive, send)
            return
        status, message, code = refusal
        body = json.dumps(error_body(short_line(message), code=code)).encode()
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _headers(scope: Scope) -> dict[str, str]:
    """The request's headers by lower-case name (latin-1, as HTTP defines them)."""
    return {name.decode("latin-1").lower(): value.decode("latin-1")
            for name, value in scope.get("headers") or []}


def _media_type(content_type: str | None) -> str | None:
    if content_type is None:
        return None
    return content_type.split(";", 1)[0].strip().lower()
