"""Exact token bytes without the server's vocabulary file (remote_vocab.py), checked
offline against the demo models' real vocabularies: SmolLM2 is byte-level BPE, Gemma 3
is SentencePiece."""

from __future__ import annotations

import pytest

from wsd_local.backend.remote_vocab import (BYTE_LEVEL, SENTENCEPIECE, StreamBytes, byte_level_table,
                                            detect_style, incomplete_tail, raw_token_bytes)

pytestmark = pytest.mark.models


def test_byte_level_table_is_a_bijection() -> None:
    table = byte_level_table()
    assert len(table) == 256 and sorted(table.values()) == list(range(256))
    assert table["Ġ"] == 0x20 and table["Ċ"] == 0x0A and table["a"] == ord("a")


@pytest.mark.parametrize("role, style", [("drafter", BYTE_LEVEL), ("base", SENTENCEPIECE)])
def test_raw_strings_give_the_bytes_llama_cpp_gives(demo_engine, role: str, style: str) -> None:
    """Every vocabulary entry of the demo models, turned into bytes by the convention,
    equals llama.cpp's own piece (control tokens render as nothing there)."""
    model = getattr(demo_engine, role)
    ids = model.tokenize(" the a\n b", add_bos=False)
    assert detect_style([model.token_text(t) for t in ids]) == style
    compared = 0
    for token in range(model.n_vocab):
        piece = model.token_bytes(token)
        if not piece:
            continue  # control tokens
        assert raw_token_bytes(model.token_text(token), style) == piece, (token, model.token_text(token))
        compared += 1
    assert compared > 0.9 * model.n_vocab


@pytest.mark.parametrize("data, tail", [(b"abc", 0), ("é".encode(), 0), ("é".encode()[:1], 1),
                                        ("🙂".encode()[:3], 3), ("🙂".encode()[:2], 2), (b"", 0)])
def test_incomplete_tail(data: bytes, tail: int) -> None:
    assert incomplete_tail(data) == tail


def _released_deltas(pieces: list[bytes], pending: bytes = b"") -> list[str]:
    """What vLLM streams per token (tokenizers' DecodeStream): a token whose text ends
    inside a character releases nothing; the token that completes it releases all
    (`pending`: a character the prompt began)."""
    out = []
    for piece in pieces:
        pending += piece
        if incomplete_tail(pending):
            out.append("")
        else:
            out.append(pending.decode("utf-8"))
            pending = b""
    return out


TEXT = "Emoji 🙂👍🏽 and 東京 in naïve café text"


def test_stream_bytes_are_exact_from_released_text(demo_engine) -> None:
    """Nothing known in advance: bytes come from the released text, groups of tokens
    that split a character are split by tokenizing their text."""
    model = demo_engine.drafter
    ids = model.tokenize(TEXT, add_bos=False)
    truth = [model.token_bytes(t) for t in ids]
    assert any(incomplete_tail(p) for p in truth)  # the text really splits characters
    cache: dict[int, bytes] = {}

    def split(text: str, group: list[int]) -> list[bytes] | None:
        got = model.tokenize(text, add_bos=False)
        return [model.token_bytes(t) for t in got] if got == group else None

    stream = StreamBytes(known=cache.get, split_group=split)
    out: list[tuple[int, bytes, bool]] = []
    for token, delta in zip(ids, _released_deltas(truth)):
        out += stream.push(token, delta)
    out += stream.finish()
    assert [t for t, _, _ in out] == ids
    assert [b for _, b, _ in out] == truth
    assert all(exact for _, _, exact in out)


def test_stream_bytes_keep_the_text_exact_when_a_group_cannot_be_split(demo_engine) -> None:
    model = demo_engine.drafter
    ids = model.tokenize(TEXT, add_bos=False)
    truth = [model.token_bytes(t) for t in ids]
    stream = StreamBytes(known=lambda t: None, split_group=lambda text, group: None)
    out: list[tuple[int, bytes, bool]] = []
    for token, delta in zip(ids, _released_deltas(truth)):
        out += stream.push(token, delta)
    assert b"".join(b for _, b, _ in out) == TEXT.encode()
    assert any(not exact for _, _, exact in out)  # those are never cached


def test_stream_bytes_deduce_the_one_unknown_token_of_a_group(demo_engine) -> None:
    model = demo_engine.drafter
    ids = model.tokenize("🙂", add_bos=False)
    assert len(ids) >= 2
    truth = {t: model.token_bytes(t) for t in ids}
    known = dict(truth)
    del known[ids[-1]]
    stream = StreamBytes(known=known.get, split_group=lambda text, group: None)
    out = [item for t, d in zip(ids, _released_deltas(list(truth.values()))) for item in stream.push(t, d)]
    assert out == [(t, truth[t], True) for t in ids]


def test_stream_bytes_skip_the_character_the_context_began(demo_engine) -> None:
    """A switch point inside a character: the server's first text repeats the bytes the
    kept draft already holds."""
    model = demo_engine.drafter
    ids = model.tokenize("🙂 ok", add_bos=False)
    pieces = [model.token_bytes(t) for t in ids]
    cut = next(i for i in range(1, len(ids)) if incomplete_tail(b"".join(pieces[:i])))
    context, rest = pieces[:cut], ids[cut:]
    carry = b"".join(context)[-incomplete_tail(b"".join(context)):]
    deltas = _released_deltas(pieces[cut:], pending=carry)  # the first release repeats the carry
    stream = StreamBytes(known=lambda t: None, split_group=lambda text, group: None, carry=carry)
    out = [item for t, d in zip(rest, deltas) for item in stream.push(t, d)]
    assert b"".join(b for _, b, _ in out) == b"".join(pieces[cut:])
