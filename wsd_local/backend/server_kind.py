"""Which server is behind a URL, which model to use, and can it do WSD's check.

WSD's check needs the log-probability of *given* tokens (`prompt_logprobs`): vLLM
returns them; llama-server and Ollama return log-probabilities of generated tokens
only, so they cannot be the base model. They are recognised by what their model list
looks like (llama-server says `owned_by: llamacpp`; Ollama `library` and answers
`/api/version`) and refused in one line that says what to use instead. Any other
server is tried with one tiny scoring request.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from ..errors import RemoteError, RemoteRefusal
from .http import RequestRejected, ServerClient

VLLM = "vLLM"
LLAMA_SERVER = "llama-server"
OLLAMA = "Ollama"


@dataclass(frozen=True)
class ServerModel:
    engine: str  # vLLM | llama-server | Ollama | the server's own `owned_by`
    name: str  # the model name the server answers to
    max_model_len: int | None
    served: tuple[str, ...]  # every model the server lists


def _entries(data: Any) -> list[dict[str, Any]]:
    items = data.get("data") if isinstance(data, dict) else None
    return [m for m in items if isinstance(m, dict) and "id" in m] if isinstance(items, list) else []


def _engine(client: ServerClient, entries: list[dict[str, Any]]) -> str:
    owners = {str(m.get("owned_by", "")).lower() for m in entries}
    if "vllm" in owners or any("max_model_len" in m for m in entries):
        return VLLM
    if "llamacpp" in owners:
        return LLAMA_SERVER
    if "library" in owners or "ollama" in owners or _answers(client, "/api/version"):
        return OLLAMA
    if _answers(client, "/props"):  # llama-server's own endpoint
        return LLAMA_SERVER
    return next((o for o in owners if o), "an OpenAI-compatible server")


def _answers(client: ServerClient, path: str) -> bool:
    try:
        client.get_json(path)
    except RemoteError:
        return False
    return True


def refusal(engine: str, client: ServerClient) -> RemoteRefusal:
    """The one line for a server that cannot score prompt tokens."""
    return RemoteRefusal(
        f"the base model server at {client.spec.api_url} is {engine}, which cannot return "
        "log-probabilities of prompt tokens (WSD's check of the draft needs them)",
        "serve the base model with vLLM (vllm serve MODEL), or run it here as a GGUF file (--base FILE.gguf)")


def find_model(client: ServerClient, wanted: str | None) -> ServerModel:
    """List the server's models and pick the one asked for (or the only one)."""
    entries = _entries(client.get_json("/v1/models"))
    if not entries:
        raise RemoteRefusal(f"{client.where} lists no models at /v1/models",
                          "is this the URL of an OpenAI-compatible server (ending in /v1)?")
    served = tuple(str(m["id"]) for m in entries)
    if wanted is None:
        if len(served) > 1:
            raise RemoteRefusal(f"{client.where} serves {len(served)} models: {', '.join(served)}",
                              f"name one after '#': {client.spec.api_url}#{served[0]}")
        chosen = entries[0]
    else:
        chosen = next((m for m in entries if m["id"] == wanted), None)
        if chosen is None:
            raise RemoteRefusal(f"{client.where} has no model named {wanted!r}",
                              f"it serves: {', '.join(served)}; use {client.spec.api_url}#{served[0]}")
    length = chosen.get("max_model_len")
    return ServerModel(engine=_engine(client, entries), name=str(chosen["id"]),
                       max_model_len=int(length) if isinstance(length, int) else None, served=served)


def scoring_request(model_name: str, tokens: Sequence[int]) -> dict[str, Any]:
    """A completions request whose answer carries each prompt token's log-probability."""
    return {"model": model_name, "prompt": list(tokens), "max_tokens": 1, "temperature": 0.0,
            "prompt_logprobs": 0}


def prompt_logprobs(data: Any, tokens: Sequence[int], start: int) -> list[float]:
    """Log-probabilities of tokens[start:] from a completions answer (entries keyed by
    the token id as a string; the first position has none)."""
    try:
        entries = data["choices"][0]["prompt_logprobs"]
        return [float(entries[j][str(tokens[j])]["logprob"]) for j in range(start, len(tokens))]
    except (KeyError, IndexError, TypeError, ValueError):
        raise RemoteError("the model server's answer has no log-probabilities of the prompt tokens",
                          "WSD's base model needs a vLLM server (vllm serve MODEL)") from None


def check_prompt_logprobs(client: ServerClient, model: ServerModel, tokens: list[int]) -> None:
    """One scoring request of two tokens: the answer must carry prompt log-probabilities
    keyed by token id."""
    try:
        data = client.post_json("/v1/completions", scoring_request(model.name, tokens), retry=True)
    except RequestRejected:  # prompt_logprobs is unknown there
        raise refusal(model.engine, client) from None
    try:
        prompt_logprobs(data, tokens, 1)
    except RemoteError:
        raise refusal(model.engine, client) from None
