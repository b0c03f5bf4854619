"""Scores from vLLM against llama.cpp scores of the same model, on a WSD frame + draft.

The SmolLM2 checkpoint vLLM serves was dequantized from the demo drafter's Q4_1 GGUF
to float32, so the two compute in different precision and kernels: close, not equal.
Measured here: max |Δp| about 0.055-0.06, mean |Δ log p| about 0.04; the test allows
max |Δp| 0.10 and mean |Δ log p| 0.10. The tiny model is float32 on both sides:
|Δ log p| stays under 0.01 (0.007 measured), the test allows 0.02.
"""

from __future__ import annotations

import math

import pytest
from conftest import options

from wsd_local.backend.llama import LlamaBackend
from wsd_local.backend.remote import RemoteBackend
from wsd_local.backend.remote_spec import parse_remote_spec
from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.messages import normalize
from wsd_local.models import demo
from wsd_local.templates import base_frame

QUESTION = "How do I make my neighbour's dog stop barking?"


@pytest.fixture(scope="module")
def local_smollm2():
    backend = LlamaBackend(demo.drafter_path(), "base", RuntimeSettings(n_ctx=2048, n_gpu_layers=0))
    yield backend
    backend.close()


def _frame_and_draft(shared_engine) -> tuple[list[int], int]:
    """Base-model tokens of the frame and a real draft (the drafter's answer)."""
    trace = shared_engine.run(QUESTION, DecodingSettings(mode="draft", max_tokens=48))
    frame = base_frame(normalize(QUESTION))
    prompt = shared_engine.base.tokenize(frame, add_bos=True)
    full = shared_engine.base.tokenize((frame + trace.answer).rstrip(), add_bos=True)
    assert full[: len(prompt)] == prompt and len(full) > len(prompt) + 20
    return full, len(prompt)


def test_remote_scores_match_llama_cpp_within_tolerance(shared_engine, local_smollm2) -> None:
    tokens, start = _frame_and_draft(shared_engine)
    remote = shared_engine.base.score(tokens, start)
    local = local_smollm2.score(tokens, start)
    assert len(remote) == len(local) == len(tokens) - start
    dp = [abs(math.exp(a) - math.exp(b)) for a, b in zip(remote, local)]
    dlogp = [abs(a - b) for a, b in zip(remote, local)]
    assert max(dp) <= 0.10, max(dp)
    assert sum(dlogp) / len(dlogp) <= 0.10, sum(dlogp) / len(dlogp)
    # Not equal: a test that cannot tell two different models apart would pass anyway.
    assert max(dlogp) > 0


def test_remote_scores_of_a_float32_model_are_nearly_exact(tiny) -> None:
    from remote_checkpoints import tiny_model

    remote = RemoteBackend(parse_remote_spec(tiny.url), "base", options(tiny))
    local = LlamaBackend(tiny_model().gguf, "base", RuntimeSettings(n_ctx=2048, n_gpu_layers=0))
    try:
        text = base_frame(normalize(QUESTION)) + "Talk to your neighbour first, then write them a note."
        tokens = remote.tokenize(text, add_bos=True)
        assert tokens == local.tokenize(text, add_bos=True)  # same tokenizer, same ids
        got, want = remote.score(tokens, 1), local.score(tokens, 1)
        assert max(abs(a - b) for a, b in zip(got, want)) < 0.02
    finally:
        remote.close()
        local.close()


def test_scoring_uses_token_ids_and_reports_the_asked_positions(shared_engine) -> None:
    tokens, start = _frame_and_draft(shared_engine)
    part = shared_engine.base.score(tokens, start + 5)
    whole = shared_engine.base.score(tokens, start)
    assert part == whole[5:]  # same request shape, same numbers, only the asked positions
    assert all(lp <= 0.0 for lp in whole)
