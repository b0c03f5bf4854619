"""UTF-8 safety and stop strings of the streaming text (no model)."""

from wsd_local.templates import STOP_STRINGS, base_frame
from wsd_local.messages import Message
from wsd_local.textstream import TextStream, earliest_stop, token_pieces


def test_multibyte_character_split_across_tokens_is_held_back():
    data = "héllo 👋".encode()
    chunks = [data[:2], data[2:3], data[3:8], data[8:10], data[10:]]
    stream = TextStream()
    out = [stream.push(c) for c in chunks]
    assert "\ufffd" not in "".join(out)
    assert "".join(out) + stream.finish() == "héllo 👋"
    assert out[0] == "h"  # the first byte of é is held back


def test_token_pieces_concatenate_to_text():
    data = "añb€".encode()
    pieces = token_pieces([data[0:2], data[2:3], data[3:5], data[5:]])
    assert "".join(pieces) == "añb€"
    assert pieces[0] == "a" and pieces[1] == "ñ"


def test_stop_string_across_tokens_cuts_text_and_holds_partial_prefix():
    stream = TextStream(stops=STOP_STRINGS)
    shown = stream.push(b"The answer is 4.\n")
    shown += stream.push(b"\n[Us")
    assert "[" not in shown and not stream.stopped
    shown += stream.push(b"er]\nnext question")
    shown += stream.finish()
    assert stream.stopped
    assert stream.final_text == "The answer is 4."
    assert shown == "The answer is 4."


def test_held_back_text_that_is_not_a_stop_is_released():
    stream = TextStream(stops=STOP_STRINGS)
    shown = stream.push(b"a\n\n[")
    shown += stream.push(b"link]")
    shown += stream.finish()
    assert shown == "a\n\n[link]" and not stream.stopped


def test_earliest_stop_prefers_the_one_with_newlines():
    text = "ok\n\n[User]\nhi"
    assert earliest_stop(text, STOP_STRINGS) == 2


def test_stop_string_beginning_in_prefix_cuts_prefix():
    stream = TextStream(stops=STOP_STRINGS, prefix="kept draft\n\n[Us")
    stream.push(b"er]\nmore")
    assert stream.stopped and stream.prefix_cut == len("kept draft")
    assert stream.final_text == ""


def test_base_frame_format():
    frame = base_frame([Message("system", " Be kind. "), Message("user", "Hi?\n"),
                        Message("assistant", "Hello."), Message("user", "Why?")])
    assert frame == ("\n\n[System]\nBe kind.\n\n[User]\nHi?\n\n[Assistant]\nHello."
                     "\n\n[User]\nWhy?\n\n[Assistant]\n")
    assert len(STOP_STRINGS) == 9 and "\n\n[User]" in STOP_STRINGS and "[Assistant]" in STOP_STRINGS


def test_a_stream_that_ends_inside_a_character_drops_its_bytes():
    """Budget, Esc or a full context may end the text mid-character: no U+FFFD."""
    stream = TextStream()
    shown = stream.push("日本".encode()) + stream.push("語".encode()[:2])
    assert shown + stream.finish() == "日本" and stream.final_text == "日本"
    assert token_pieces(["👋".encode()[:3]]) == [""]
