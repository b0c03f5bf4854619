"""Loops in text: the repetition stop on near-copies, windows of a draft that repeat
earlier text, and the switch rule that skips them (`--switch-skip-repeats`).

The guard and the window test are pure functions of text, fed here with synthetic text
in the shapes the demo models loop in; the decoder's use of them runs on the scripted
fake backend (tests/fake_backend.py). The stop on the real demo models is tested in
test_fidelity.py.
"""

from __future__ import annotations

import re

import pytest

from fake_backend import FakeBackend, FakeVocab
from wsd_local.answer import describe_switch
from wsd_local.settings import DecodingSettings
from wsd_local.decoder import Decoder
from wsd_local.errors import ConfigError
from wsd_local.events import DraftScored, Finished
from wsd_local.messages import normalize as messages
from wsd_local.repetition import RepetitionGuard, normalize, window_repeats
from wsd_local.switch import SwitchDetector, first_switch, switch_index, window_scores
from wsd_local.templates import base_frame
from wsd_local.trace import Trace


def words(text: str) -> list[str]:
    """Text in token-like pieces: each word with the space or newlines before it."""
    return re.findall(r"\s*\S+|\s+", text)


def stop_index(pieces: list[str], repeats: int = 3) -> int | None:
    """The piece at which the guard ends the answer, or None."""
    guard = RepetitionGuard(repeats)
    for i, piece in enumerate(pieces):
        if guard.push(piece.encode()):
            return i
    return None


def list_item(n: int, marker: str = "{n}.", bold: str = "<strong>{}</strong>") -> str:
    head = bold.format("Clean up any loose hair:")
    return (f"{marker.format(n=n)} {head}\n  If you're using a dog bed, clean up any loose hair "
            "from the bottom of the bed.\n")


# -- the normal form ----------------------------------------------------------------------
def test_normal_form_drops_what_varies_between_copies_of_a_loop() -> None:
    same = normalize(list_item(35))
    assert normalize(list_item(36)) == same
    assert normalize(list_item(7, marker="-")) == normalize(list_item(8, marker="*"))
    assert normalize(list_item(35, bold="**{}**")) == same
    assert normalize(list_item(35).replace("\n  ", "  \n\n    ")) == same
    assert normalize("Second, pack a tent.") == normalize("Third, pack a tent.") == normalize("3rd, pack a tent.")
    # What does not vary stays: words, their order, and a digit inside a word.
    assert normalize("Pack a tent.") != normalize("Pack a map.")
    assert normalize("an mp3 player") != normalize("an mp4 player")
    assert normalize("t295 t296") == "t295 t296"


# -- the repetition stop --------------------------------------------------------------------
def test_a_numbered_list_repeating_one_item_stops_within_its_second_copy() -> None:
    """The loop of a real answer: the same list item with a new number each time."""
    text = "Here is what you can do.\n\n" + "".join(list_item(n) for n in range(34, 60))
    pieces = words(text)
    i = stop_index(pieces)
    assert i is not None
    written = "".join(pieces[: i + 1])
    first, second, third = (text.index(list_item(n)) for n in (34, 35, 36))
    assert second < len(written) <= third  # inside the second copy, or at its end
    assert written.count("Clean up any loose hair") == 2


@pytest.mark.parametrize("variant", ["markers", "bold", "spacing"])
def test_near_copies_that_differ_in_markers_emphasis_or_spacing_stop(variant: str) -> None:
    items = []
    for n in range(10):
        if variant == "markers":
            items.append(list_item(n, marker="-" if n % 2 else "*"))
        elif variant == "bold":
            items.append(list_item(n, bold="**{}**" if n % 2 else "<b>{}</b>"))
        else:
            items.append(list_item(n).replace("\n  ", "\n" + " " * (n % 3 + 1)))
    pieces = words("".join(items))
    i = stop_index(pieces)
    assert i is not None and "".join(pieces[: i + 1]).count("Clean up any loose hair") == 2


def test_a_short_span_needs_n_copies_and_0_turns_the_stop_off() -> None:
    line = ["A", " place", " of", " endless", " wonder", ",\n"]
    pieces = ["Intro."] + line * 6
    i = stop_index(pieces)
    assert i is not None
    written = "".join(pieces[: i + 1])
    assert written.count("wonder") == 4 and written.endswith("wonder")  # the span, then 3 copies
    assert stop_index(pieces, repeats=2) < i  # fewer copies asked, an earlier stop
    assert stop_index(line * 10, repeats=0) is None


def test_text_that_does_not_loop_is_not_stopped() -> None:
    assert stop_index(["ha", " "] * 20) is None                      # too short to be a loop
    assert stop_index(["|", "---"] * 40) is None                     # a table rule: no letters
    assert stop_index(words(", ".join(str(n) for n in range(1, 300)))) is None  # counting
    assert stop_index(words("\n".join(f"| {n} | {n * n} |" for n in range(60)))) is None
    steps = ["Fill the kettle with fresh water.", "Warm the pot with a little hot water.",
             "Add one teaspoon of tea per cup.", "Pour the water just off the boil.",
             "Let it steep for three to five minutes.", "Stir, strain and serve with milk."]
    assert stop_index(words("\n".join(f"{n}. {s}" for n, s in enumerate(steps, 1)))) is None


def test_a_continuation_repeating_the_kept_draft_stops_sooner() -> None:
    """The base model's tokens are judged with the kept draft before them (primed)."""
    kept, continuation = list_item(1), words("".join(list_item(n) for n in range(2, 9)))
    primed = RepetitionGuard(3)
    primed.prime(kept)
    stopped = next(i for i, piece in enumerate(continuation) if primed.push(piece.encode()))
    assert "".join(continuation[: stopped + 1]).count("Clean up any loose hair") == 1
    assert stop_index(continuation) > stopped  # alone, it needs a copy of its own first item


def test_the_stop_does_not_depend_on_how_the_text_is_split_into_tokens() -> None:
    """The guard keeps part of its normal form and normalizes the rest with each token:
    the same text stops at the same character, token by token or character by character
    (word by word: at the word holding that character)."""
    text = ("Intro line.\n" + "A long line without a break " * 3 + "\n"
            + "".join(list_item(n, marker="-" if n % 2 else "{n})") for n in range(5)))
    by_words = words(text)
    w = stop_index(by_words)
    c = stop_index(list(text))
    assert w is not None and c is not None
    word_end = len("".join(by_words[: w + 1]))
    assert word_end - len(by_words[w]) <= c < word_end


def test_a_loop_in_characters_split_across_tokens_stops() -> None:
    loop = "東京は日本の首都で、とても大きな都市です。" * 6
    data = loop.encode()
    pieces = [data[i:i + 4] for i in range(0, len(data), 4)]  # cuts inside characters
    guard = RepetitionGuard(3)
    stopped = next(i for i, piece in enumerate(pieces) if guard.push(piece))
    written = b"".join(pieces[: stopped + 1]).decode("utf-8", errors="ignore")
    assert written.count("首都") == 4


# -- windows in a repeated span -------------------------------------------------------------
SENTENCE = " Don't forget your camera, your backpack and your tent."
LOOPING_DRAFT = words("Pack light and plan ahead." + SENTENCE * 3)


def test_windows_repeat_only_inside_a_copy_of_earlier_text() -> None:
    first_copy = len(words("Pack light and plan ahead." + SENTENCE))
    flags = [window_repeats(LOOPING_DRAFT, j, 3) for j in range(len(LOOPING_DRAFT))]
    assert not any(flags[:first_copy])          # nothing repeats yet
    assert any(flags[first_copy:])               # the copies repeat the first
    assert flags[-1]
    # Causal: a window's answer reads the draft up to its last token only.
    assert flags == [window_repeats(LOOPING_DRAFT[: j + 1], j, 3) for j in range(len(LOOPING_DRAFT))]
    plain = words("Pack light and plan ahead. Bring water, a map and a warm jacket for the night.")
    assert not any(window_repeats(plain, j, 3) for j in range(len(plain)))


def test_the_rule_skips_repeated_windows_and_the_detector_agrees() -> None:
    n = len(LOOPING_DRAFT)
    probs = [0.3] * 8 + [0.95] * (n - 8)  # the base model finds the loop predictable
    skip = lambda j: window_repeats(LOOPING_DRAFT, j, 3)  # noqa: E731
    plain = first_switch(probs, 3, 0.8)
    assert plain is not None and not skip(plain)  # the first copy, before it repeats
    late = [0.3] * (n - 4) + [0.95] * 4  # confident only in the last copy
    assert skip(first_switch(late, 3, 0.8))
    assert first_switch(late, 3, 0.8, skip) is None
    assert switch_index(late, 3, 0.8, skip) == n - 1  # the whole draft is kept
    detector = SwitchDetector(3, 0.8, skip_repeats=True)
    for p, piece in zip(late, LOOPING_DRAFT):
        detector.push(p, piece)
    reached = [j for j, g in enumerate(window_scores(late, 3)) if j >= 2 and g >= 0.8]
    assert detector.switch_at is None and detector.skipped == reached and all(map(skip, reached))


# -- the decoder, on the scripted fake backend ------------------------------------------------
PROMPT = "What should I pack?"
WINDOW = 3


#: The drafter loops, then writes something new.
LOOP_THEN_NEW = words("Pack light and plan ahead." + SENTENCE * 2 + " Check the weather forecast before you go.")


def looping_backends(confident_from: int, draft: list[str] = LOOP_THEN_NEW) -> tuple[FakeBackend, FakeBackend]:
    """One vocabulary (the drafter's tokens are the draft tokens); the base model is
    confident in draft tokens from index `confident_from` on."""
    vocab = FakeVocab([*draft, "\n\n", "[User]", "[Assistant]", " Enjoy", " the", " trip."])
    drafter = FakeBackend("drafter", vocab, writes=draft)
    prompt = len(drafter.tokenize(base_frame(messages(PROMPT)), add_bos=True))
    base = FakeBackend("base", vocab, writes=[" Enjoy", " the", " trip."],
                       prob=lambda position, piece: 0.95 if position - prompt >= confident_from else 0.3)
    return drafter, base


def decode(settings: DecodingSettings, confident_from: int, draft: list[str] = LOOP_THEN_NEW) -> Trace:
    drafter, base = looping_backends(confident_from, draft)
    events = list(Decoder(drafter, base, messages(PROMPT), settings).events())
    assert isinstance(events[-1], Finished)
    trace = events[-1].trace
    trace.check()
    switches = [e.index for e in events if isinstance(e, DraftScored) and e.is_switch]
    assert switches == ([trace.switch_index] if trace.switch_fired else [])
    return trace


def test_a_switch_inside_a_loop_is_shown_and_the_option_skips_it() -> None:
    in_second_copy = len(words("Pack light and plan ahead." + SENTENCE)) + 4
    run = DecodingSettings(window=WINDOW, chunk_tokens=2, max_tokens=64, draft_max_tokens=64)
    plain = decode(run, in_second_copy)
    assert plain.switch_fired and plain.switch_in_repeat
    assert "switch inside a repeated span" in describe_switch(plain, brief=True)
    assert "switch inside a repeated span" in describe_switch(plain)
    skipping = decode(run.with_changes(switch_skip_repeats=True), in_second_copy)
    skip = skipping.repeat_skip(WINDOW)
    assert skip is not None and plain.repeat_skip(WINDOW) is None
    # The rule with the skip, applied to the stored scores, is where the switch fell.
    assert skipping.switch_index == switch_index(skipping.draft_token_probs, WINDOW, run.threshold, skip)
    # The first window that ends in new text: the new sentence's first word.
    assert skipping.switch_fired and not skipping.switch_in_repeat
    assert skipping.switch_index == len(words("Pack light and plan ahead." + SENTENCE * 2))
    assert skipping.counts["repeat_windows_skipped"] >= 1
    assert "skipped" in describe_switch(skipping) and "repeated span" not in describe_switch(skipping, brief=True)
    assert skipping.what_if(run.threshold, WINDOW).index == skipping.switch_index
    # Without a loop under the switch the option changes nothing.
    early = decode(run, 4)
    assert not early.switch_in_repeat
    assert decode(run.with_changes(switch_skip_repeats=True), 4).answer == early.answer


def test_with_the_skip_a_looping_draft_ends_at_the_repetition_stop() -> None:
    """Its windows cannot hand over, so the loop would run to the budget: the repetition
    stop ends the draft, and the base model continues from it."""
    endless = words("Pack light and plan ahead." + SENTENCE * 12)
    run = DecodingSettings(window=WINDOW, chunk_tokens=2, max_tokens=200, draft_max_tokens=200,
                           switch_skip_repeats=True)
    in_second_copy = len(words("Pack light and plan ahead." + SENTENCE)) + 4
    assert decode(run.with_changes(switch_skip_repeats=False), in_second_copy, endless).switch_in_repeat
    trace = decode(run, in_second_copy, endless)
    assert trace.counts["draft_repetition_stop"] == 1 and not trace.switch_fired
    assert trace.counts["draft_tokens"] < len(endless)
    assert 2 <= trace.draft_text.count("camera") <= 4 and trace.kept_draft == trace.draft_text
    assert trace.counts["repeat_windows_skipped"] >= 1
    assert "no window outside repeated draft text reached γ" in describe_switch(trace, brief=True)
    assert "draft_repetition_stop" not in decode(run.with_changes(switch_skip_repeats=False),
                                                  in_second_copy, endless).counts


def test_skip_repeats_is_refused_in_paper_mode_and_off_in_older_traces() -> None:
    with pytest.raises(ConfigError, match="switch-skip-repeats is not part of the paper mode's switch rule"):
        DecodingSettings(mode="paper", switch_skip_repeats=True)
    with pytest.raises(ConfigError, match="paper"):
        DecodingSettings(switch_skip_repeats=True).check_modes(["wsd", "paper"])
    DecodingSettings(switch_skip_repeats=True).check_modes(["wsd", "base", "draft", "nudging"])
    assert DecodingSettings.from_dict({"mode": "wsd"}).switch_skip_repeats is False


def test_the_cli_refuses_skip_repeats_in_paper_mode_before_decoding(tmp_path, monkeypatch, capsys) -> None:
    from wsd_local.cli import main

    for name, value in (("WSD_DATA_DIR", "data"), ("WSD_MODELS_DIR", "models"), ("WSD_CONFIG", "c.toml")):
        monkeypatch.setenv(name, str(tmp_path / value))
    prompts, run = tmp_path / "p.jsonl", tmp_path / "run.jsonl"
    prompts.write_text('{"prompt": "hi"}\n')
    for argv in (["generate", "--mode", "paper", "--switch-skip-repeats", "hi"],
                 ["eval", str(prompts), "-o", str(run), "--modes", "wsd,paper", "--switch-skip-repeats"],
                 ["bench", "--modes", "wsd,paper", "--switch-skip-repeats"]):
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and "switch-skip-repeats is not part of the paper mode's switch rule" in err
    assert not run.exists()


def test_the_stops_report_lists_answers_a_stop_ended() -> None:
    from devtools.repetition_stops import Ending, report

    loop = "".join(list_item(n) for n in range(1, 4))
    before = {"a": Ending("max_tokens", 90, loop + list_item(4)), "b": Ending("eos", 10, "Fine.")}
    after = {"a": Ending("repetition", 60, loop), "b": Ending("eos", 10, "Fine.")}
    lines = report(before, after)
    assert lines[0] == ("a: before max_tokens at 90 tok · after repetition at 60 tok · "
                        "same text up to the earlier stop")
    assert lines[1].endswith("bottom of the bed.⏎") and not any(line.startswith("b:") for line in lines)
    assert lines[-2:] == ["before: 0 of 2 answers stopped by repetition",
                          "after: 1 of 2 answers stopped by repetition, at answer tokens 60"]


def test_a_switch_inside_a_repeated_span_is_said_in_the_tui_header_and_the_cli_summary() -> None:
    """A made-up trace (UI text only): the drafter repeats a sentence, the switch falls
    in its third copy."""
    from chat_traces import make_trace
    from tui.widgets.answer import AnswerState, render_answer
    from wsd_local.cli.render import summary_line

    sentence = "Pack a tent and a map for the trip. "
    looped = make_trace(kept=sentence * 2 + "Pack a tent and", discarded=" a map.")
    plain = make_trace()
    assert looped.switch_in_repeat and not plain.switch_in_repeat
    for trace, shown in ((looped, True), (plain, False)):
        state = AnswerState()
        state.finish(trace)
        assert ("switch inside a repeated span" in render_answer(state).plain) is shown
        assert ("switch inside a repeated span" in summary_line(trace)) is shown
