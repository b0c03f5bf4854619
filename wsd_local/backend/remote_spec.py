"""What the user types to put a model on a server: `URL[#model]`, plus the API key.

    http://gpu-box:8000/v1                          the server's only model
    http://gpu-box:8000/v1#meta-llama/Llama-3.1-70B  that model of the server

The URL may end with `/v1` or not (it is added). Credentials never come from the URL
(it is shown in the TUI, written into traces and kept in shell history): the key comes
from `--api-key` or the `WSD_API_KEY` environment variable, and a URL that carries
`user:password@` or a query string is refused.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

from ..errors import ConfigError

API_KEY_ENV = "WSD_API_KEY"
#: Seconds to wait for a server's answer to one request (a streamed continuation: for
#: each next token). Connecting has its own, shorter limit.
DEFAULT_TIMEOUT_S = 60.0
CONNECT_TIMEOUT_S = 10.0


def is_remote_spec(spec: str | None) -> bool:
    return bool(spec) and spec.strip().lower().startswith(("http://", "https://"))


@dataclass(frozen=True)
class RemoteSpec:
    """A parsed `URL[#model]`. `api_url` ends with /v1; `root` is the server root, where
    vLLM serves /tokenize and /detokenize."""

    api_url: str
    model: str | None = None  # None: the server's only model

    @property
    def root(self) -> str:
        return self.api_url[: -len("/v1")]

    @property
    def host(self) -> str:
        return urlsplit(self.api_url).netloc

    def __str__(self) -> str:
        return self.api_url + (f"#{self.model}" if self.model else "")


def parse_remote_spec(text: str) -> RemoteSpec:
    """`URL[#model]` -> RemoteSpec; one-line ConfigError for anything else."""
    raw = text.strip()
    url, _, model = raw.partition("#")
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a port that is not a number
    except ValueError as exc:
        raise ConfigError(f"not a server URL: {raw!r} ({exc})",
                          "expected http://HOST:PORT/v1 or http://HOST:PORT/v1#MODEL") from None
    del port
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"not a server URL: {raw!r}",
                          "expected http://HOST:PORT/v1 or http://HOST:PORT/v1#MODEL")
    if parts.username is not None or parts.password is not None:
        raise ConfigError("the server URL carries credentials (user:password@)",
                          f"remove them and give the key with --api-key or {API_KEY_ENV}; "
                          "URLs are shown on screen and saved in traces")
    if parts.query:
        raise ConfigError("the server URL has a query string (?...)",
                          f"give only http://HOST:PORT/v1[#MODEL]; an API key goes in --api-key or {API_KEY_ENV}")
    path = parts.path.rstrip("/")
    if not path.endswith("/v1"):
        path += "/v1"
    api_url = urlunsplit((parts.scheme, parts.netloc, path, "", ""))
    return RemoteSpec(api_url=api_url, model=model.strip() or None)


@dataclass(frozen=True)
class RemoteOptions:
    """How to talk to model servers: the API key (never stored or shown) and the
    per-request timeout."""

    api_key: str | None = field(default=None, repr=False)
    timeout_s: float = DEFAULT_TIMEOUT_S

    def __post_init__(self) -> None:
        if not self.timeout_s > 0:
            raise ConfigError(f"remote-timeout must be > 0 seconds, got {self.timeout_s:g}")

    @classmethod
    def from_env(cls, api_key: str | None = None, timeout_s: float | None = None) -> "RemoteOptions":
        """A key given on the command line wins over WSD_API_KEY."""
        key = api_key if api_key else os.environ.get(API_KEY_ENV) or None
        return cls(api_key=key, timeout_s=DEFAULT_TIMEOUT_S if timeout_s is None else timeout_s)
