"""Hand-built traces for the store, export and TUI tests (no model run needed)."""

from __future__ import annotations

import math

from wsd_local.settings import DecodingSettings
from wsd_local.trace import ModelIdentity, TokenRecord, Trace

DRAFTER = ModelIdentity(role="drafter", name="SmolLM2-135M-Instruct", path="/m/smollm2.gguf",
                        architecture="llama", quantization="Q4_1", size_bytes=100, n_vocab=49152)
BASE = ModelIdentity(role="base", name="gemma-3-270m", path="/m/gemma.gguf",
                     architecture="gemma3", quantization="Q4_K_M", size_bytes=200, n_vocab=262144)


def make_trace(kept: str = "Keep the dog busy with walks",
               discarded: str = " and toys every day.",
               continuation: str = " and give it a quiet place to rest.",
               mode: str = "wsd", stop_reason: str = "eos", question: str = "How do I stop barking?",
               created_at: float = 1_700_000_000.0) -> Trace:
    """A WSD trace whose draft is `kept + discarded`; the base model wrote `continuation`."""
    words = (kept + discarded).split(" ")
    pieces = [w if i == 0 else " " + w for i, w in enumerate(words)]
    kept_n = len(kept.split(" "))
    # With window 2 and threshold 0.8, the switch rule fires exactly at the last kept word.
    probs = [0.4] * max(kept_n - 2, 0) + [0.9, 0.95][-min(kept_n, 2):] + [0.6] * (len(pieces) - kept_n)
    draft_tokens = [TokenRecord(i, p, math.log(pr)) for i, (p, pr) in enumerate(zip(pieces, probs))]
    cont_tokens = [TokenRecord(100 + i, " " + w if i else (" " + w if continuation.startswith(" ") else w),
                               -0.1) for i, w in enumerate(continuation.split())]
    spans = []
    if mode == "base":
        spans = [{"model": "base", "text": continuation}]
        answer, kept, discarded = continuation, "", ""
        switch = None
    elif mode == "draft":
        spans = [{"model": "drafter", "text": kept}]
        answer, continuation, discarded = kept, "", ""
        switch = None
    else:
        answer = kept + continuation
        spans = [{"model": "drafter", "text": kept}] + (
            [{"model": "base", "text": continuation}] if continuation else [])
        switch = kept_n - 1
    trace = Trace(
        settings=DecodingSettings(mode=mode, window=2, max_tokens=64),
        messages=[{"role": "user", "content": question}],
        models={"drafter": DRAFTER, "base": BASE},
        answer=answer, spans=spans, draft_text=kept + discarded,
        draft_tokens=draft_tokens if mode in ("wsd", "paper") else [],
        switch_index=switch, switch_fired=switch is not None, switch_char=len(kept) if mode != "base" else 0,
        kept_draft=kept, continuation=continuation, continuation_tokens=cont_tokens,
        stop_reason=stop_reason, timings={"total_s": 1.5}, counts={"draft_tokens": len(pieces)},
        backend="CPU", created_at=created_at,
    )
    trace.check()
    if switch is not None:
        assert trace.what_if(0.8, 2).index == switch  # the stored switch obeys the rule
    return trace
