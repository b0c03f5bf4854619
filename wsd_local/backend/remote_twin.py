"""Does a server's tokenizer equal a local model's? (Then draft token ids go to the
server as they are: Pilot-3B local + a Llama-3.x base on vLLM.)

A local fingerprint digests every token's text and type (LlamaBackend); a server
publishes neither its vocabulary nor its size, so the two cannot be digested alike.
What handing over ids needs is that each id means the same text on both sides, and
that is checked directly, on a probe that reaches across the whole local vocabulary:

- a fixed text (prose, punctuation, digits, accents, CJK, emoji, code, whitespace
  runs) and the pieces of 512 token ids spread evenly over the local vocabulary, one
  per line, tokenized by the server: for every id it returns, its raw vocabulary
  string must equal the local vocabulary's entry for that id (no id may lie beyond the
  local vocabulary), and at least half of the sampled ids must come back as
  themselves, so the comparison covers the whole id range;
- the local model's special tokens (BOS, EOS), written as text: the server must read
  each as the same single id.

The ids of the two tokenizations are not required to be equal: llama.cpp and Hugging
Face tokenizers split a few inputs differently (`\r\n`) with identical vocabularies,
and what matters for the hand-over is the meaning of the ids, not the splitting.
The probe is two requests, made once when the models load.

Two models on servers (`same_server_vocabulary`) cannot be compared with a local list
either: both must tokenize the probe text alike (ids and raw strings) and decode ids
spread over the range it reached to the same text.
"""

from __future__ import annotations

from typing import Callable

from ..errors import RemoteError
from .protocol import Backend

#: The server's tokenization of a text, without special tokens added: the ids and each
#: id's raw vocabulary string (`RemoteBackend.tokenize_raw`).
ServerTokenize = Callable[[str], tuple[list[int], list[str]]]

PROBE_TEXT = (
    "Weak-to-strong decoding: a small model drafts, a big one continues. Don't you think "
    "it's 42%? E = mc², naïve café, déjà vu — «quotes», 東京は晴れ 🙂👍🏽\n\n"
    "def main(x: int) -> None:\n    return {'a': [1, 2, 3]}  # comment\n\t\tend   \r\n12345 67890"
)
SAMPLED_IDS = 512


def sampled_pieces(local: Backend) -> dict[int, str]:
    """Evenly spread ids whose pieces are whole, printable characters."""
    n = local.n_vocab
    step = max(1, n // SAMPLED_IDS)
    pieces: dict[int, str] = {}
    for token in range(0, n, step):
        try:
            text = local.token_bytes(token).decode("utf-8")
        except UnicodeDecodeError:
            continue  # part of a character
        if text.strip() and text.isprintable():
            pieces[token] = text
    return pieces


def same_vocabulary(server_tokenize: ServerTokenize, local: Backend) -> bool:
    """True when every id the server gives for the probe means the same text locally,
    the probe covers the id range, and the special tokens agree."""
    token_text = getattr(local, "token_text", None)
    if token_text is None:
        return False
    sampled = sampled_pieces(local)
    text = PROBE_TEXT + "\n" + "\n".join(sampled.values())
    try:
        ids, raws = server_tokenize(text)
    except RemoteError:
        return False
    if any(t < 0 or t >= local.n_vocab or token_text(t) != raw for t, raw in zip(ids, raws)):
        return False
    if 2 * len(set(ids) & set(sampled)) < len(sampled):
        return False
    specials = [s for s in (local.special_token_text("bos"), local.special_token_text("eos")) if s]
    if specials:
        expected = [local.tokenize(s, add_bos=False, special=True) for s in specials]
        if any(len(e) != 1 for e in expected):
            return False
        try:
            got, _ = server_tokenize("".join(specials))
        except RemoteError:
            return False
        if got != [e[0] for e in expected]:
            return False
    return True


#: A server's tokenization of a text (ids, raw strings) when given text, or its
#: decoding of ids when given ids (`RemoteBackend._tokenize_and_decode`).
ServerProbe = Callable[..., "tuple[list[int], list[str]] | str"]


def same_server_vocabulary(first: ServerProbe, second: ServerProbe) -> bool:
    """Two models on servers (neither lists its vocabulary): True when both tokenize
    the probe text into the same ids with the same raw strings, and both decode the same
    text from ids spread over the range the probe reached (one request each). Two
    tokenizers of one family pass; a different vocabulary fails on its ids or strings."""
    try:
        tokenized = first(PROBE_TEXT, None)
        if tokenized != second(PROBE_TEXT, None):
            return False
        ids = tokenized[0] if isinstance(tokenized, tuple) else []
        if not ids:
            return False
        step = max(1, max(ids) // SAMPLED_IDS)
        spread = list(range(0, max(ids) + 1, step))
        return first(None, spread) == second(None, spread)
    except RemoteError:
        return False
