"""Hand-over by ids or by text: how often does the switch move?

    python -m devtools.handoff [--base NAME|PATH] [--max-tokens N] [--draft-max-tokens N]

With two models of one vocabulary the draft can reach the base model as the drafter's
token ids (`--handoff ids`) or, as the paper's reference code does, as text that the
base tokenizer reads again (`--handoff text`: decoded without special tokens, stripped,
joined to the frame, right-stripped, re-encoded). This runs paper mode both ways on the
bench prompts and the hard-split prompts and reports, per prompt, whether the base
tokens of the draft differ, the switch index k of each, and whether the kept text and
the answer are the same. The base model defaults to the demo drafter itself (the only
same-vocabulary pair among the demo models); `--base` takes another GGUF of the
drafter's vocabulary.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass

from wsd_local.settings import DecodingSettings
from wsd_local.modes import PAPER_MODE
from wsd_local.bench.prompts import BENCH_PROMPTS, HARD_SPLIT_PROMPTS


@dataclass
class Pair:
    prompt: str
    tokens_differ: bool  # the re-read draft's base tokens are not the drafter's ids
    k_ids: int | None
    k_text: int | None
    kept_same: bool
    answer_same: bool


def compare(engine, prompts, settings: DecodingSettings) -> list[Pair]:
    pairs = []
    for i, prompt in enumerate(prompts):
        print(f"prompt {i + 1}/{len(prompts)}", file=sys.stderr, flush=True)
        by_ids = engine.run(prompt, settings.with_changes(handoff="ids"))
        by_text = engine.run(prompt, settings.with_changes(handoff="text"))
        ids = [t.id for t in by_ids.draft_tokens]
        text_ids = [t.id for t in by_text.draft_tokens]
        pairs.append(Pair(prompt, ids != text_ids, by_ids.switch_index, by_text.switch_index,
                          by_ids.kept_draft.strip() == by_text.kept_draft.strip(),
                          by_ids.answer.strip() == by_text.answer.strip()))
    return pairs


def report(pairs: list[Pair]) -> str:
    lines = [f"{'prompt':<44} {'tokens':>7} {'k ids':>6} {'k text':>6} {'kept':>5} {'answer':>6}", "-" * 80]
    for p in pairs:
        lines.append(f"{p.prompt[:44]:<44} {'differ' if p.tokens_differ else 'same':>7} {p.k_ids!s:>6} "
                     f"{p.k_text!s:>6} {'same' if p.kept_same else 'diff':>5} {'same' if p.answer_same else 'diff':>6}")
    n = len(pairs)
    moved = sum(p.k_ids != p.k_text for p in pairs)
    lines.append(f"switch index differs on {moved}/{n} prompts; draft tokens differ on "
                 f"{sum(p.tokens_differ for p in pairs)}/{n}; kept text differs on "
                 f"{sum(not p.kept_same for p in pairs)}/{n}; answer differs on {sum(not p.answer_same for p in pairs)}/{n}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from wsd_local.engine import Engine
    from wsd_local.models import demo

    parser = argparse.ArgumentParser(prog="python -m devtools.handoff",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--drafter", default=None)
    parser.add_argument("--base", default=None, help="a GGUF of the drafter's vocabulary (default: the drafter)")
    parser.add_argument("--max-tokens", type=int, default=96)
    parser.add_argument("--draft-max-tokens", type=int, default=128)
    args = parser.parse_args(argv)
    drafter = args.drafter or str(demo.drafter_path())
    engine = Engine.load(drafter, args.base or drafter)
    try:
        if not engine.run("Hi", DecodingSettings(mode=PAPER_MODE.name, max_tokens=4)).counts.get("shared_vocabulary"):
            print("the two models do not share a vocabulary: only text can be handed over", file=sys.stderr)
            return 2
        settings = DecodingSettings(mode=PAPER_MODE.name, max_tokens=args.max_tokens,
                                    draft_max_tokens=args.draft_max_tokens, repetition_stop=0)
        pairs = compare(engine, BENCH_PROMPTS + HARD_SPLIT_PROMPTS, settings)
    finally:
        engine.close()
    print(f"hand-over ids vs text · paper mode, greedy · max_tokens {args.max_tokens} · "
          f"draft_max_tokens {args.draft_max_tokens} · {len(pairs)} prompts")
    print(report(pairs))
    return 0


if __name__ == "__main__":
    sys.exit(main())
