"""Text from outside is shown, never obeyed: `terminal_safe` and every printer that uses
it (`wsd log`, `wsd generate`'s streamed answer and summary, `wsd models info/list`,
eval progress and reports, doctor, error messages) and the TUI's views.

The hostile text is the issue's own: a prompt holding `ESC ] 0 ; title BEL` (retitles
the window) and `ESC [ 2 J` (clears the screen), plus a C1 CSI, DEL, a carriage return
that would overwrite, and a bidi override."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from wsd_local.terminal_text import TerminalStream, terminal_safe, terminal_safe_json

HOSTILE = "Hi \x1b]0;pwned\x07 there\x1b[2J, \x9b31m red\x7f, fake\rreal, \u202eevil\u202c end"

# What a terminal would act on: C0 but newline and tab, DEL, C1, bidi controls.
OBEYED = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def obeyed(text: str) -> list[str]:
    return OBEYED.findall(text)


def test_controls_are_shown_as_escapes() -> None:
    safe = terminal_safe(HOSTILE)
    assert obeyed(safe) == []
    assert safe == ("Hi \\x1b]0;pwned\\x07 there\\x1b[2J, \\x9b31m red\\x7f, fake\\rreal, "
                    "\\u202eevil\\u202c end")
    assert terminal_safe("line one\r\nline two\n\tindented") == "line one\nline two\n\tindented"
    assert terminal_safe("a\nb\tc\r\n", one_line=True) == "a\\nb\\tc\\r\\n"
    plain = "Ünïcödé, emoji 🙂‍🚀, العربية\u200f, 中文, [markup] and \\x1b typed out"
    assert terminal_safe(plain) == plain  # nothing else changes


@settings(max_examples=300, deadline=None)
@given(text=st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from(list("\r\n\x1b\x07\x9b\u202e"))),
       cuts=st.lists(st.integers(0, 50), max_size=6))
def test_piece_by_piece_is_the_same_as_all_at_once(text: str, cuts: list[int]) -> None:
    """A streamed answer arrives token by token: the pieces made safe one at a time
    join to the whole text made safe (a CR LF split across pieces included)."""
    bounds = sorted({min(c, len(text)) for c in cuts})
    pieces = [text[a:b] for a, b in zip([0, *bounds], [*bounds, len(text)])]
    for one_line in (False, True):
        stream = TerminalStream(one_line=one_line)
        joined = "".join(stream.push(p) for p in pieces) + stream.finish()
        assert joined == terminal_safe(text, one_line=one_line)
        assert obeyed(joined) == []
        if one_line:
            assert "\n" not in joined and "\t" not in joined


@settings(max_examples=200, deadline=None)
@given(value=st.recursive(st.text() | st.integers() | st.none(),
                          lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                          max_leaves=10))
def test_json_output_is_inert_and_decodes_to_the_same_values(value) -> None:
    text = terminal_safe_json(json.dumps(value, ensure_ascii=False, indent=2))
    assert obeyed(text) == [] and json.loads(text) == value


def _stored_answer(data_dir: Path) -> None:
    from chat_traces import make_trace
    from wsd_local.store import Store

    with Store(data_dir / "chats.sqlite3") as store:
        chat = store.create_chat(HOSTILE, source="serve")
        store.add_message(chat.id, "user", HOSTILE)
        trace = make_trace(kept="Sure, do\x1b[2J this", continuation=" \x1b]0;pwned\x07 done\r\n")
        store.add_message(chat.id, "assistant", trace.answer, trace=trace)


@pytest.mark.parametrize("args", [[], ["--short"]], ids=["full", "short"])
def test_wsd_log_shows_a_hostile_prompt_and_answer_inert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                         capsys: pytest.CaptureFixture[str], args: list) -> None:
    from wsd_local.cli import main

    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("FORCE_COLOR", "1")  # our own colours still come through
    _stored_answer(tmp_path)
    assert main(["log", *args]) == 0
    out = capsys.readouterr().out
    assert "\\x1b]0;pwned\\x07" in out and "\\x1b[2J" in out
    ours = re.sub(r"\x1b\[[0-9;]*m", "", out)  # our SGR colour codes, and nothing else
    assert obeyed(ours) == []


def test_wsd_log_json_keeps_the_exact_text_and_is_inert(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                        capsys: pytest.CaptureFixture[str]) -> None:
    from wsd_local.cli import main

    monkeypatch.setenv("WSD_DATA_DIR", str(tmp_path))
    _stored_answer(tmp_path)
    assert main(["log", "--json"]) == 0
    out = capsys.readouterr().out
    assert obeyed(out) == []
    (entry,) = json.loads(out)
    assert entry["question"] == HOSTILE and entry["answer"].startswith("Sure, do\x1b[2J")


def test_the_streamed_answer_and_its_summary_are_inert() -> None:
    """The printer of `wsd generate`, fed the events a decoder sends, with hostile text
    split across tokens (ESC in one token, the rest of its sequence in the next; CR at
    the end of one, LF at the start of the next)."""
    from chat_traces import make_trace
    from wsd_local.cli.render import AnswerPrinter
    from wsd_local.events import BaseToken, Finished, PhaseChanged

    pieces = ["Hi \x1b", "]0;pwned\x07 and\r", "\nthen \x1b[2", "J\x9b", "\u202eevil"]
    trace = make_trace(mode="base", continuation="".join(pieces))
    out, err = io.StringIO(), io.StringIO()
    printer = AnswerPrinter(out=out, err=err, color=True, progress=False)
    for event in [PhaseChanged("continuing"), *(BaseToken(p, 1, -0.1) for p in pieces), Finished(trace)]:
        printer.handle(event)
    ours = re.sub(r"\x1b\[[0-9;]*m", "", out.getvalue())
    assert obeyed(ours) == []
    assert ours.startswith("Hi \\x1b]0;pwned\\x07 and\nthen \\x1b[2J\\x9b\\u202eevil\n")


def test_models_info_and_list_show_hostile_metadata_inert(empty_models_dir: Path,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    from gguf_bytes import STRING, UINT32, header, kv, text, u32
    from wsd_local.cli import main

    models = empty_models_dir
    path = models / "evil\x1b[2J.gguf"
    path.write_bytes(header([kv("general.architecture", STRING, text("llama\x1b]0;pwned\x07")),
                             kv("general.name", STRING, text("name\x9b\u202ex\ny")),
                             kv("llama\x1b]0;pwned\x07.context_length", UINT32, u32(512))]) + b"\0" * 64)
    assert main(["models", "info", str(path)]) == 0
    out = capsys.readouterr().out
    assert obeyed(out) == [] and "llama\\x1b]0;pwned\\x07  (name\\x9b\\u202ex\\ny)" in out
    assert main(["models", "list"]) == 0
    out = capsys.readouterr().out
    assert obeyed(out) == [] and "evil\\x1b[2J" in out
    assert main(["models", "info", str(empty_models_dir.parent / "missing\x1b]0;x\x07.gguf")]) == 2
    err = capsys.readouterr().err
    assert obeyed(err) == [] and "missing\\x1b]0;x\\x07.gguf" in err and err.count("\n") == 1


def test_eval_progress_report_and_skipped_records_are_inert(tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    """Ids, categories and problems come from the prompt file."""
    from wsd_local.eval.progress import Progress, answer_label

    stream = io.StringIO()
    progress = Progress(stream)
    progress.start(1, 0)
    label = answer_label("id\x1b[2J", "wsd", 0, 1)
    progress.failed(label, "the server said \x1b]0;pwned\x07\nsecond line")
    assert obeyed(stream.getvalue()) == [] and stream.getvalue().count("\n") == 2
    from wsd_local.cli import main

    prompts = tmp_path / "p.jsonl"
    prompts.write_text(json.dumps({"prompt": "ok", "id": "a"}) + "\n"
                       + json.dumps({"messages": [{"role": "\x1b]0;pwned\x07", "content": "x"}]}) + "\n")
    code = main(["eval", str(prompts), "-o", str(tmp_path / "run.jsonl"), "--strict"])
    err = capsys.readouterr().err
    assert code == 2 and obeyed(err) == [] and err.count("\n") == 1
    assert "unknown role '\\x1b]0;pwned\\x07'" in err


def test_doctor_lines_are_inert() -> None:
    from wsd_local.doctor import Line, format_lines

    shown = format_lines([Line("config", "/home/x/\x1b]0;pwned\x07/config.toml"), Line("models", "ok")])
    assert obeyed(shown) == [] and "\\x1b]0;pwned\\x07" in shown
