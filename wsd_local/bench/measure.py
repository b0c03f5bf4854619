"""Run the modes over the prompt set and derive the numbers the project tracks."""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass, field
from typing import Callable, Sequence

from ..settings import DecodingSettings
from ..modes import BASE_MODE, DRAFT_MODE, NUDGING_MODE, PAPER_MODE, WSD_MODE, names
from ..trace import Trace
from .memory import peak_rss_bytes
from .remote import requests_since, server_requests

#: The modes a bench runs by default; `--modes` takes any mode (nudging is measured on
#: request: docs/BENCHMARKS.md).
DEFAULT_MODES = names((BASE_MODE, DRAFT_MODE, PAPER_MODE, WSD_MODE))


@dataclass
class Row:
    prompt_index: int
    mode: str
    wall_s: float
    trace: Trace
    # Requests to a model server during this answer (bench/remote.py), if one is used.
    requests: dict[str, float] | None = None

    @property
    def answer_tokens(self) -> int:
        return self.trace.answer_tokens


@dataclass
class BenchResult:
    rows: list[Row] = field(default_factory=list)
    peak_rss: int = 0
    model_bytes: int = 0
    scoring: dict[str, float] = field(default_factory=dict)
    overhead: dict[str, float] = field(default_factory=dict)

    def by_mode(self, mode: str) -> list[Row]:
        return [r for r in self.rows if r.mode == mode]

    def wall(self, mode: str) -> float:
        return sum(r.wall_s for r in self.by_mode(mode))

    def per_answer_token(self, mode: str) -> float:
        rows = self.by_mode(mode)
        return sum(r.wall_s for r in rows) / max(1, sum(r.answer_tokens for r in rows))

    def unit_costs(self) -> dict[str, float]:
        """Seconds per token of drafting, scoring (base model, in online steps) and base
        decoding, from the online WSD (the default mode) and base-only runs."""
        wsd, base = self.by_mode(WSD_MODE.name), self.by_mode(BASE_MODE.name)

        def rate(rows: Sequence[Row], time_key: str, count_key: str) -> float:
            t = sum(r.trace.timings.get(time_key, 0.0) for r in rows)
            n = sum(r.trace.counts.get(count_key, 0) for r in rows)
            return t / n if n else float("nan")

        return {"draft": rate(wsd, "draft_s", "draft_tokens"),
                "score": rate(wsd, "score_s", "draft_tokens_scored"),
                "base": rate(base, "continue_s", "base_tokens_generated")}

    def handovers(self, mode: str = NUDGING_MODE.name) -> list[int]:
        """Hand-overs per answer (nudging: how often the turn passed between the models)."""
        return [r.trace.counts.get("handovers", 0) for r in self.by_mode(mode)]

    def switch_fraction(self) -> float:
        rows = self.by_mode(WSD_MODE.name)
        fractions = [(r.trace.counts.get("kept_draft_tokens", 0)) / max(1, r.answer_tokens) for r in rows]
        return statistics.mean(fractions) if fractions else 0.0


def run_bench(engine, prompts: Sequence[str], settings: DecodingSettings,
              modes: Sequence[str] = DEFAULT_MODES, progress: Callable[[str], None] = lambda s: None
              ) -> BenchResult:
    result = BenchResult()
    for i, prompt in enumerate(prompts):
        for mode in modes:
            progress(f"prompt {i + 1}/{len(prompts)} · {mode}")
            before = server_requests(engine)
            start = time.perf_counter()
            trace = engine.run(prompt, settings.with_changes(mode=mode))
            wall = time.perf_counter() - start
            result.rows.append(Row(i, mode, wall, trace, requests_since(before, server_requests(engine))))
    result.peak_rss = peak_rss_bytes()
    result.model_bytes = sum(m.identity.size_bytes for m in (engine.drafter, engine.base) if m)
    return result


def measure_scoring(engine, trace: Trace, repeats: int = 3) -> dict[str, float]:
    """The scoring pass (logits only at draft positions) against `Llama.eval` with
    logits for every position, on the same prompt + draft tokens."""
    from ..templates import base_frame
    from ..messages import normalize
    from .baselines import time_eval_logits_all

    base = engine.base
    prompt = base.tokenize(base_frame(normalize(trace.messages)), add_bos=True)
    tokens = prompt + [t.id for t in trace.draft_tokens]
    best = float("inf")
    for _ in range(repeats):
        base.reset()
        start = time.perf_counter()
        base.score(tokens, start=len(prompt))
        best = min(best, time.perf_counter() - start)
    base.reset()
    naive = time_eval_logits_all(str(base.path), tokens, base.n_ctx, 0, repeats)
    return {"tokens": len(tokens), "draft_tokens": len(tokens) - len(prompt),
            "score_s": best, "eval_logits_all_s": naive, "ratio": best / naive}


def measure_overhead(engine, prompt: str, n_tokens: int = 64, repeats: int = 3) -> dict[str, float]:
    """Engine generation (base-only mode) against a bare decode loop over the same
    model and the same tokens; best of `repeats` for each."""
    from ..messages import normalize
    from ..templates import base_frame
    from .baselines import bare_greedy_loop

    settings = DecodingSettings(mode="base", max_tokens=n_tokens)
    context = engine.base.tokenize(base_frame(normalize(prompt)), add_bos=True)
    engine_best, bare_best, produced = float("inf"), float("inf"), 0
    for _ in range(repeats):
        engine.base.reset()
        start = time.perf_counter()
        trace = engine.run(prompt, settings)
        engine_best = min(engine_best, time.perf_counter() - start)
        produced = trace.counts.get("base_tokens_generated", 0)
        tokens, seconds = bare_greedy_loop(engine.base, context, produced)
        bare_best = min(bare_best, seconds)
    return {"tokens": produced, "engine_s": engine_best, "bare_s": bare_best,
            "ratio": engine_best / bare_best}
