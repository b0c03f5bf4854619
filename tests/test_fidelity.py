"""Fidelity to the paper and edge cases of the decoder, on the real demo models.

Base greedy by default, the repetition stop (its rules: test_repetition.py), UTF-8 at every stop, what-if and re-run
past the scored part of an online draft, and the errors for a context too large and a
messages file whose last message is empty.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from answer_shapes import assert_same_answer, candidates, first_answer, same_draft_tokens

from wsd_local import repetition
from wsd_local.bench.prompts import BENCH_PROMPTS
from wsd_local.settings import DecodingSettings
from wsd_local.decoder import drafter_prompt
from wsd_local.errors import PromptError
from wsd_local.messages import normalize
from wsd_local.switch import window_scores

SMALL = DecodingSettings(max_tokens=24, draft_max_tokens=48)
WSD = Path(sys.executable).with_name("wsd")


def test_base_model_continues_greedily_unless_asked_to_sample(demo_engine):
    """The paper's base model is greedy; the drafter samples with the user's temperature."""
    hot = SMALL.with_changes(mode="paper", temperature=1.0, top_p=0.95, seed=1)

    def unsure_continuation(t) -> bool:
        """A switch before the end of the draft, and a greedy pick of the base model's
        with p < 0.5: a sample differs from the greedy continuation more often than not."""
        return (t.switch_fired and t.switch_index < len(t.draft_tokens) - 1
                and any(r.logprob < math.log(0.5) for r in t.continuation_tokens))

    # Chosen at run time: the sampled draft and the switch differ from CPU to CPU.
    chosen = first_answer(
        lambda prompt, threshold: demo_engine.run(prompt, hot.with_changes(threshold=threshold)),
        unsure_continuation, "a switch before the end of a sampled draft and an unsure greedy pick",
        candidates(("Explain why the sky is blue in simple terms.",) + BENCH_PROMPTS, thresholds=(0.5, 0.3)))
    greedy, prompt, hot = chosen.trace, chosen.prompt, hot.with_changes(threshold=chosen.threshold)
    k = greedy.switch_index
    # The same kept draft, continued by the base model with temperature 0, gives the same answer.
    cold = type(greedy).from_dict(greedy.to_dict())
    cold.settings = cold.settings.with_changes(temperature=0.0)
    again = list(demo_engine.rerun_from(cold, k))[-1].trace
    assert_same_answer(again, greedy, "greedy continuation of the same kept draft")
    sampled = demo_engine.run(prompt, hot.with_changes(sample_base=True))
    assert sampled.draft_text == greedy.draft_text  # the same seed drafts the same
    assert sampled.settings.sample_base and not greedy.settings.sample_base
    # The base model samples: with other seeds for it (the same kept draft, replayed),
    # some continuation differs from the greedy one (each does with p > 0.47).
    continuations = [sampled.continuation]
    for seed in range(2, 18):
        if any(c != greedy.continuation for c in continuations):
            break
        other = type(sampled).from_dict(sampled.to_dict())
        other.settings = other.settings.with_changes(seed=seed)
        continuations.append(list(demo_engine.rerun_from(other, k))[-1].trace.continuation)
    assert any(c != greedy.continuation for c in continuations), continuations


def test_repetition_stop_ends_a_loop_and_is_off_when_asked(demo_engine):
    """The demo base model falls into greedy loops; a prompt where it does on this
    machine is chosen at run time."""
    base = DecodingSettings(mode="base", max_tokens=80)
    prompts = ("Describe a magical forest.", "Write a poem about the sea.") + BENCH_PROMPTS
    looped = first_answer(lambda prompt, _: demo_engine.run(prompt, base), lambda t: t.stop_reason == "repetition",
                          "a repetition stop", candidates(prompts, thresholds=[base.threshold]))
    prompt, looped = looped.prompt, looped.trace
    assert looped.settings.repetition_stop == 3
    # The answer ends with a span and its copies, compared as the guard compares them
    # (near-copies: numbers, list markers, tags and spacing aside).
    assert repetition.loops_at_end(repetition.normalize(looped.answer), looped.settings.repetition_stop), \
        looped.answer
    full = demo_engine.run(prompt, DecodingSettings(mode="base", max_tokens=80, repetition_stop=0))
    assert full.stop_reason == "max_tokens" and full.answer.startswith(looped.answer)
    assert len(full.answer) > len(looped.answer)


def test_repetition_stop_defaults_follow_the_mode() -> None:
    assert DecodingSettings().resolved().repetition_stop == 3            # chat, serve, generate
    assert DecodingSettings(mode="paper").resolved().repetition_stop == 0  # the paper's pipeline
    assert DecodingSettings(mode="paper", repetition_stop=2).resolved().repetition_stop == 2
    # Nudging keeps its own loop guards: the trace says the repetition stop is not used.
    assert DecodingSettings(mode="nudging").resolved().repetition_stop == 0
    assert DecodingSettings(mode="nudging", repetition_stop=2).resolved().repetition_stop == 0
    from wsd_local.cli.bench import BENCH_DEFAULTS
    from wsd_local.cli.eval import EVAL_DEFAULTS
    assert EVAL_DEFAULTS.repetition_stop == 0 and BENCH_DEFAULTS.repetition_stop == 0


@pytest.mark.parametrize("prompt", ["日本の首都はどこですか？短く答えてください。",
                                    "Describe these emoji: 👩‍👩‍👧‍👦🏳️‍🌈👍🏽🇯🇵"])
@pytest.mark.parametrize("mode", ["wsd", "paper", "draft", "base"])
def test_no_answer_ends_inside_a_character(demo_engine, prompt, mode):
    """A token budget that ends mid-character drops the incomplete bytes (as llama.cpp's
    server does): no U+FFFD in the answer, the kept or the discarded draft."""
    for max_tokens in (5, 6, 7, 9):
        trace = demo_engine.run(prompt, DecodingSettings(mode=mode, max_tokens=max_tokens,
                                                         draft_max_tokens=max_tokens))
        trace.check()
        for text in (trace.answer, trace.kept_draft, trace.draft_text, trace.discarded_draft,
                     trace.continuation):
            assert "\ufffd" not in text, (mode, max_tokens, text)


def _drafter_wrote(engine, prompt: str, text: str) -> bool:
    """Whether `text` tokenizes into the very tokens the greedy drafter writes first for
    `prompt`: a trace keeps its draft as text, and a re-run writes on from its tokens."""
    drafter = engine.drafter
    ids = drafter.tokenize(text, add_bos=False)
    stream = drafter.generate(drafter_prompt(drafter, normalize(prompt)), len(ids))
    try:
        return [t.id for t in stream] == ids
    finally:
        stream.close()


def _online_with_room_past_it(engine, run: DecodingSettings):
    """An online answer whose drafter stopped at its switch, a threshold `found` above
    every window it scored, and paper mode's answer for that threshold, whose draft
    goes on at least 3 tokens past the online one: chosen at run time (the switch falls
    elsewhere on other CPUs)."""
    tried = []
    for prompt, threshold in candidates(thresholds=(0.8, 0.65, 0.5)):
        online = engine.run(prompt, run.with_changes(mode="wsd", threshold=threshold))
        tried.append(f"{prompt!r} at γ {threshold}")
        if not online.switch_fired or online.draft_complete:
            continue
        if not _drafter_wrote(engine, prompt, online.draft_text):
            continue
        best = max(window_scores(online.draft_token_probs, 6)[5:])
        found = round(best + 0.02, 2)  # no scored window reaches it
        if found >= 1.0:
            continue
        paper = engine.run(prompt, run.with_changes(mode="paper", threshold=found))
        if len(paper.draft_tokens) > len(online.draft_tokens) + 3:
            return prompt, online, found, paper
    raise AssertionError("no online answer stops at a switch with 3 paper-mode draft tokens past it; tried "
                         + "; ".join(tried))


def test_what_if_past_the_online_draft_is_unknown_and_rerun_drafts_on(demo_engine):
    run = DecodingSettings(max_tokens=64, draft_max_tokens=64)
    _, online, found, paper = _online_with_room_past_it(demo_engine, run)
    n = len(online.draft_tokens)
    what_if = online.what_if(found, 6)
    assert not what_if.known and what_if.unknown_past == n and what_if.index is None
    # Re-run: the drafter writes on from the stored draft until the rule decides.
    rerun = list(demo_engine.rerun_with(online, found, 6))[-1].trace
    assert len(rerun.draft_tokens) > n
    assert [t.id for t in rerun.draft_tokens[:n]] == [t.id for t in online.draft_tokens]
    # It equals paper mode with that threshold: the drafter re-reads its own draft as it
    # wrote it, so it writes on with paper mode's tokens on any CPU; the switch and the
    # answer may part only at a near tie of a window score or of the base model's greedy
    # pick (assert_same_answer).
    assert same_draft_tokens(rerun, paper, len(rerun.draft_tokens)), "re-run vs paper: the drafts differ"
    assert_same_answer(rerun, paper, "re-run vs paper")
    # A switch chosen by hand past the scored tokens: drafted on to it, not clamped.
    forced = list(demo_engine.rerun_from(online, n + 2))[-1].trace
    forced.check()
    assert forced.switch_index == n + 2 and len(forced.draft_tokens) > n + 2
    assert [t.id for t in forced.draft_tokens[:n]] == [t.id for t in online.draft_tokens]
    assert forced.kept_draft == "".join(t.text for t in forced.draft_tokens[: n + 3])
    assert same_draft_tokens(forced, paper, n + 3), "forced re-run vs paper: the drafts differ"
    assert forced.kept_draft == "".join(t.text for t in paper.draft_tokens[: n + 3])


def test_messages_with_an_empty_last_message_name_it() -> None:
    with pytest.raises(PromptError, match=r'messages\[2\] \(user\): "content" is empty'):
        normalize([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                   {"role": "user", "content": "  "}])
    with pytest.raises(PromptError, match=r'messages\[0\] \(user\) has no "content"'):
        normalize([{"role": "user"}])


@pytest.mark.skipif(not WSD.exists(), reason="the wsd console script is not installed")
def test_cli_errors_name_the_context_size_and_the_empty_message(tmp_path: Path) -> None:
    env_run = dict(capture_output=True, text=True, timeout=120,
                   env={"PATH": "/usr/bin:/bin", "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
                        "WSD_DATA_DIR": str(tmp_path / "data"), "WSD_CONFIG": str(tmp_path / "c.toml"),
                        "WSD_MODELS_DIR": str(tmp_path / "models"), "HOME": str(tmp_path)})
    big = subprocess.run([str(WSD), "generate", "--ctx", "100000000", "hi"], **env_run)
    assert big.returncode != 0 and "Traceback" not in big.stderr
    line = big.stderr.strip()
    assert line.count("\n") <= 1 and "100000000" in line and "trained for" in line and "would need" in line
    messages = tmp_path / "m.json"
    messages.write_text(json.dumps([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
                                    {"role": "user", "content": ""}]))
    empty = subprocess.run([str(WSD), "generate", "--messages", str(messages)], **env_run)
    assert empty.returncode == 2 and "Traceback" not in empty.stderr
    assert 'messages[2] (user): "content" is empty' in empty.stderr


def test_a_repetition_stop_is_said_in_the_tui_and_the_cli() -> None:
    import io

    from chat_traces import make_trace
    from tui.widgets.answer import AnswerState, render_answer
    from wsd_local.cli.render import AnswerPrinter
    from wsd_local.events import Finished

    trace = make_trace(stop_reason="repetition")
    state = AnswerState()
    state.finish(trace)
    assert "stopped: it began repeating itself" in render_answer(state).plain
    out = io.StringIO()
    printer = AnswerPrinter(out=out, err=io.StringIO(), color=False, progress=False)
    printer.handle(Finished(trace))
    assert "began repeating itself" in out.getvalue()
