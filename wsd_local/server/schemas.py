"""The OpenAI chat-completions request, as pydantic models (also the OpenAPI schema).

Only the shape is checked here; ranges of the decoding settings are checked by
`request.parse_request` against the declarations in `settings.py`, so the server, the
CLI flags and the TUI form accept exactly the same values. Fields this server does
not know are accepted and ignored, except those whose meaning it cannot honour
(tools, penalties, ...), which `request.py` rejects by name.
"""

from __future__ import annotations

from typing import Any, Union

from pydantic import BaseModel, ConfigDict, Field

from ..settings import settings_json_schema

#: Keys of the `wsd` request object that are not decoding settings.
WSD_OPTIONS_SCHEMA: dict[str, Any] = {
    "trace": {"type": "boolean", "default": False,
              "description": "include the answer's full trace (docs/TRACE_FORMAT.md) in the "
                             "last chunk / the response's `wsd.trace`"},
}


def _wsd_schema(schema: dict[str, Any]) -> None:
    """The `wsd` field's schema: every decoding setting (from its declaration) plus the
    response options, nothing else."""
    settings = settings_json_schema()
    schema.clear()
    schema.update({
        "title": "Wsd",
        "description": "Weak-to-strong decoding settings for this request (over the server's "
                       "defaults), sent by OpenAI clients through `extra_body`.",
        "type": ["object", "null"],
        "additionalProperties": False,
        "properties": {**settings["properties"], **WSD_OPTIONS_SCHEMA},
    })


class TextPart(BaseModel):
    model_config = ConfigDict(extra="allow")
    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: str
    content: Union[str, list[TextPart], None] = None
    name: str | None = None


class StreamOptions(BaseModel):
    model_config = ConfigDict(extra="allow")
    include_usage: bool | None = False


class ChatCompletionRequest(BaseModel):
    model_config = ConfigDict(extra="allow")

    messages: list[ChatMessage]
    model: str | None = Field(None, description="the id from GET /v1/models (optional)")
    max_tokens: int | None = Field(None, description="answer length limit in tokens")
    max_completion_tokens: int | None = Field(None, description="same as max_tokens (newer name)")
    temperature: float | None = None
    top_p: float | None = None
    seed: int | None = None
    stop: Union[str, list[str], None] = Field(None, description="cut the answer at the first "
                                                                "occurrence of any of these")
    # Optional booleans: some clients send an explicit null for "not set".
    stream: bool | None = False
    stream_options: StreamOptions | None = None
    logprobs: bool | None = False
    top_logprobs: int | None = Field(None, description="only 0: alternatives are not returned")
    n: int | None = Field(None, description="only 1")
    wsd: dict[str, Any] | None = Field(None, json_schema_extra=_wsd_schema)


# -- responses -------------------------------------------------------------------------------
def usage_body(prompt_tokens: int, completion_tokens: int) -> dict[str, int]:
    return {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
            "total_tokens": prompt_tokens + completion_tokens}


def logprob_entry(token: str, logprob: float) -> dict[str, Any]:
    return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8")),
            "top_logprobs": []}
