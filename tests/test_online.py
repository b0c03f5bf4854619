"""Online WSD (the switch found while the drafter writes) against the paper pipeline.

With greedy decoding both must find the same switch and write the same answer. The two
evaluate the same tokens in different batch shapes, which moves llama.cpp's numbers a
little; where that decides a near tie, the trace flags it and this test says so in a
warning rather than hiding it.
"""

from __future__ import annotations

import math

import pytest
from answer_shapes import THRESHOLDS, assert_same_answer, first_answer

from wsd_local.bench.prompts import BENCH_PROMPTS, HARD_SPLIT_PROMPTS
from wsd_local.settings import DecodingSettings, RuntimeSettings
from wsd_local.switch import switch_index

PROMPTS = BENCH_PROMPTS[:8]  # everyday, advice, arithmetic, a harmful request
SETTINGS = DecodingSettings(max_tokens=40, draft_max_tokens=96)


def _compare(online, paper, label: str) -> None:
    """The online pass scored a prefix of what the paper pass scored, token for token,
    and found the same switch and answer (or parted at a near tie, with a warning). It
    drafted no more than paper mode, and stopped at a check: after a whole chunk."""
    assert_same_answer(online, paper, label)
    assert online.counts["draft_tokens"] <= paper.counts["draft_tokens"], label
    if not online.draft_complete:
        assert online.counts["draft_tokens"] % online.settings.chunk_tokens == 0, label


@pytest.mark.parametrize("prompt", PROMPTS)
def test_online_equals_paper_on_demo_pair(demo_engine, prompt):
    online = demo_engine.run(prompt, SETTINGS.with_changes(mode="wsd"))
    paper = demo_engine.run(prompt, SETTINGS.with_changes(mode="paper"))
    assert online.counts["shared_vocabulary"] == 0  # 49k vs 262k words: re-tokenized
    _compare(online, paper, prompt)


@pytest.mark.parametrize("prompt", HARD_SPLIT_PROMPTS)
def test_online_equals_paper_where_text_re_splits(demo_engine, prompt):
    """Long compound words, URLs, code identifiers, CJK without spaces, emoji: text that
    more text re-splits far back. Online mode scores only tokens before a safe boundary
    (stability.py), so every token it scored is one of paper mode's, in the same place."""
    from wsd_local.events import DraftRescored

    events = list(demo_engine.generate(prompt, SETTINGS.with_changes(mode="wsd", chunk_tokens=4)))
    online = events[-1].trace
    paper = demo_engine.run(prompt, SETTINGS.with_changes(mode="paper"))
    _compare(online, paper, prompt)
    assert not any(isinstance(e, DraftRescored) for e in events)  # nothing scored was taken back


def test_online_drafts_past_the_switch_until_it_is_stable_then_to_the_chunk_end(demo_engine):
    """The draft-waste bound (docs/DESIGN.md, "Online stability"). With chunk 1 the
    drafter stops at N1 tokens, the first after which the switch token ends at a safe
    boundary: `s` tokens past the kept text, however long the word that holds the
    boundary back. With chunk c it stops at the first check from N1 on, ceil(N1 / c) * c
    tokens, so at most s + c - 1 past the kept text (not chunk + window)."""
    prompt = HARD_SPLIT_PROMPTS[0]  # a long compound word: it can hold the boundary back
    chunk = 4
    chosen = first_answer(
        lambda p, threshold: demo_engine.run(p, SETTINGS.with_changes(mode="wsd", chunk_tokens=1,
                                                                      threshold=threshold)),
        lambda t: t.switch_fired and not t.draft_complete, "an online switch before the draft ends",
        [(prompt, threshold) for threshold in THRESHOLDS])
    each, threshold = chosen.trace, chosen.threshold
    chunked = demo_engine.run(prompt, SETTINGS.with_changes(mode="wsd", chunk_tokens=chunk, threshold=threshold))
    paper = demo_engine.run(prompt, SETTINGS.with_changes(mode="paper", threshold=threshold))
    if not (assert_same_answer(each, paper, prompt) and assert_same_answer(chunked, paper, prompt)):
        return  # a near tie moved a switch (warned): the runs stop for different tokens
    n1, stable_lag = each.counts["draft_tokens"], each.counts["draft_tokens_past_switch"]
    assert chunked.counts["draft_tokens"] == min(math.ceil(n1 / chunk) * chunk, paper.counts["draft_tokens"])
    assert chunked.counts["draft_tokens_past_switch"] <= stable_lag + chunk - 1
    assert each.counts["draft_tokens_past_switch"] <= paper.counts["draft_tokens_past_switch"]


@pytest.fixture(scope="module")
def same_tokenizer_engine(demo_engine):
    """The drafter as both models: one vocabulary, so token ids are handed over."""
    from wsd_local.backend.llama import LlamaBackend
    from wsd_local.engine import Engine

    second = LlamaBackend(demo_engine.drafter.path, "base", RuntimeSettings(n_ctx=1024, n_gpu_layers=0),
                          name="smollm2-135m-as-base")
    engine = Engine(demo_engine.drafter, second)
    yield engine
    second.close()


@pytest.mark.parametrize("prompt", PROMPTS[:4])
def test_online_equals_paper_on_same_tokenizer_pair(same_tokenizer_engine, prompt):
    online = same_tokenizer_engine.run(prompt, SETTINGS.with_changes(mode="wsd"))
    paper = same_tokenizer_engine.run(prompt, SETTINGS.with_changes(mode="paper"))
    assert online.counts["shared_vocabulary"] == 1
    _compare(online, paper, prompt)
    # Handed-over ids: the draft tokens are exactly what the drafter wrote.
    assert "".join(t.text for t in paper.draft_tokens) == paper.draft_text


@pytest.mark.parametrize("prompt", [PROMPTS[0], HARD_SPLIT_PROMPTS[2]])
def test_text_handoff_reads_the_draft_again_like_the_reference(same_tokenizer_engine, prompt):
    """`handoff = text` on one vocabulary: the draft is decoded, stripped and tokenized
    again with the frame (the reference's string handling); online == paper there too."""
    from wsd_local.templates import base_frame
    from wsd_local.messages import normalize

    engine = same_tokenizer_engine
    online = engine.run(prompt, SETTINGS.with_changes(mode="wsd", handoff="text"))
    paper = engine.run(prompt, SETTINGS.with_changes(mode="paper", handoff="text"))
    assert paper.settings.handoff == "text" and paper.counts["shared_vocabulary"] == 1
    _compare(online, paper, prompt)
    frame = base_frame(normalize(prompt))
    expected = engine.base.tokenize((frame + paper.draft_text).rstrip(), add_bos=True)
    prompt_ids = engine.base.tokenize(frame, add_bos=True)
    assert [t.id for t in paper.draft_tokens] == expected[len(prompt_ids):]
    assert paper.draft_text == paper.draft_text.lstrip()


# Texts whose base tokenization (Gemma-3) changes 3 or 4 tokens back when more of the
# text arrives, measured by tokenizing every prefix: the cut points below are where a
# rule that leaves only the last 2 tokens unscored scores a token the final text lacks.
RESPLIT_TEXTS = [
    ("Donaudampfschifffahrtsgesellschaftskapitän is a long word.", 33),
    ("Visit https://www.example.com/path/to/some/really_long_resource-name.html?query=abcdef&x=1 now", 62),
    ("!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!", 17),
]


@pytest.mark.parametrize("text,cut", RESPLIT_TEXTS, ids=["compound", "url", "punctuation"])
def test_online_step_scores_only_tokens_the_whole_draft_keeps(demo_engine, text, cut):
    """One online step at a cut where the base tokenization of the partial draft differs
    from the whole draft's 3+ tokens back: every token the step scores is one of the
    whole draft's tokens, in its place, so the next step takes nothing back."""
    from wsd_local.check import DraftChecker, token_cover
    from wsd_local.events import DraftRescored
    from wsd_local.messages import Message
    from wsd_local.templates import base_frame

    base = demo_engine.base
    frame = base_frame([Message("user", "Write something.")])
    checker = DraftChecker(base, frame, window=6, threshold=0.99, shared_vocab=False, cover=token_cover(base))
    final_tokens = checker.base_tokens(text)
    partial_tokens = checker.base_tokens(text[:cut])
    differ = len(partial_tokens) - next(
        (i for i, (a, b) in enumerate(zip(partial_tokens, final_tokens)) if a != b), len(partial_tokens))
    assert differ >= 3, "the cut must re-split 3+ tokens back for this test to mean anything"

    list(checker.step(text[:cut], [], final=False))
    scored = checker.scored_ids
    assert scored == final_tokens[: len(scored)]
    events = list(checker.step(text, [], final=True))
    assert not any(isinstance(e, DraftRescored) for e in events)
    assert checker.scored_ids == final_tokens
