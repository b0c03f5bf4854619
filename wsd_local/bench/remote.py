"""`wsd bench --base URL`: where the time goes when the base model (or the drafter, or
both) is on a server; requests are counted over both models.

Per mode: requests per answer, and the time per answer token split into
- model time: what the server reports it spent on scoring and continuation requests
  (vLLM with `--enable-per-request-metrics`: queue + prefill/first token + generation);
- HTTP overhead: the client's wall time inside requests minus that model time (network,
  JSON, the API server, tokenize requests; for a streamed continuation also the
  client's own per-token work while the stream is open);
- local: everything outside requests (a local drafter, the controller).
With `--compare-local MODEL` the same prompts run with that model as a local base.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .measure import BenchResult

def server_requests(engine) -> dict[str, float] | None:
    """The request counters of the models on servers (base, drafter, or both added
    up), or None when both run here."""
    clients = [c for c in (getattr(m, "client", None) for m in (engine.drafter, engine.base)) if c is not None]
    if not clients:
        return None
    snapshots = [c.stats.snapshot() for c in clients]
    return {key: sum(s[key] for s in snapshots) for key in snapshots[0]}


def requests_since(before: dict[str, float] | None, after: dict[str, float] | None) -> dict[str, float] | None:
    if before is None or after is None:
        return None
    return {k: after[k] - before[k] for k in after}


def remote_summary(result: "BenchResult", local: "BenchResult | None" = None,
                   local_name: str = "") -> str:
    lines: list[str] = []
    missing_server_time = False
    for mode in dict.fromkeys(r.mode for r in result.rows):
        rows = [r for r in result.by_mode(mode) if r.requests is not None]
        if not rows:
            continue
        tokens = max(1, sum(r.answer_tokens for r in rows))
        total = {k: sum(r.requests[k] for r in rows) for k in rows[0].requests}  # type: ignore[index, union-attr]
        wall = sum(r.wall_s for r in rows)
        per = lambda seconds: f"{seconds / tokens * 1e3:.1f}"  # noqa: E731 - ms per answer token
        text = (f"{mode:<5} {total['requests'] / len(rows):5.1f} requests/answer, "
                f"{total['prompt_tokens'] / len(rows):5.0f} prompt tokens/answer on the server · "
                f"{per(wall)} ms per answer token"
                f" = local {per(wall - total['seconds'])} + in requests {per(total['seconds'])}")
        if total["timed_requests"]:
            text += (f" (model {per(total['server_seconds'])}, HTTP overhead "
                     f"{per(total['seconds'] - total['server_seconds'])})")
        elif total["requests"]:
            missing_server_time = True
        if local is not None and local.by_mode(mode):
            ratio = result.per_answer_token(mode) / local.per_answer_token(mode)
            text += f" · local base {local.per_answer_token(mode) * 1e3:.1f} ms: remote/local {ratio:.2f}x"
        if total["retries"]:
            text += f" · {total['retries']:.0f} retries"
        lines.append(text)
    if not lines:
        return ""
    head = "models on a server: requests per answer and time per answer token (ms)"
    if local is not None:
        head += f"; local comparison: {local_name}"
    if missing_server_time:
        lines.append("(start vLLM with --enable-per-request-metrics to split model time from HTTP overhead)")
    return "\n".join([head, *lines])
