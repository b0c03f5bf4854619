"""Error paths of the remote backend against fake servers (tests/fake_servers.py):
servers that cannot be WSD's base model, servers that do not answer, a refused key, a
stream that stalls while the user cancels. Offline and fast; the real vLLM runs in
tests/remote/ (`make test-remote`)."""

from __future__ import annotations

import json
import threading
import time

import pytest
from fake_servers import (FakeServer, json_route, models, scoring_then_stall, scoring_without_prompt_logprobs,
                          silent, stream_then_stall, tokenize_bytes, vllm_like)

from wsd_local.backend.remote import RemoteBackend
from wsd_local.backend.remote_spec import RemoteOptions, parse_remote_spec
from wsd_local.cli import main
from wsd_local.errors import RemoteError


def _load(url: str, **options) -> RemoteBackend:
    return RemoteBackend(parse_remote_spec(url), "base", RemoteOptions(**options))


def _error(url: str, **options) -> str:
    with pytest.raises(RemoteError) as info:
        _load(url, **options)
    line = info.value.one_line()
    assert "\n" not in line
    return line


def test_llama_server_is_refused_by_name() -> None:
    routes = {"GET /v1/models": models("llamacpp", "qwen2.5-7b.gguf"),
              "POST /v1/completions": scoring_without_prompt_logprobs}
    with FakeServer(routes) as server:
        line = _error(server.url)
    assert "is llama-server, which cannot return log-probabilities of prompt tokens" in line
    assert "vllm serve MODEL" in line and "--base FILE.gguf" in line


def test_ollama_is_refused_by_name() -> None:
    with FakeServer({"GET /v1/models": models("library", "llama3:8b"),
                     "GET /api/version": json_route({"version": "0.5.0"})}) as server:
        line = _error(server.url)
    assert "is Ollama, which cannot return log-probabilities of prompt tokens" in line


def test_a_server_without_prompt_logprobs_is_refused() -> None:
    routes = {"GET /v1/models": models("acme"), "POST /tokenize": tokenize_bytes,
              "POST /v1/completions": scoring_without_prompt_logprobs}
    with FakeServer(routes) as server:
        line = _error(server.url)
    assert "is acme, which cannot return log-probabilities of prompt tokens" in line


def test_a_server_that_does_not_answer_times_out() -> None:
    with FakeServer({"GET /v1/models": silent(5)}) as server:
        line = _error(server.url, timeout_s=0.5)
    assert "did not answer /v1/models within 0.5 s" in line and "--remote-timeout" in line


def test_a_refused_key_names_the_flag() -> None:
    with FakeServer({"GET /v1/models": json_route({"error": {"message": "Unauthorized"}}, 401)}) as server:
        line = _error(server.url, api_key="wrong")
    assert "HTTP 401: Unauthorized" in line and "--api-key or WSD_API_KEY" in line and "wrong" not in line


def test_several_models_need_a_name() -> None:
    def two(h, body):
        h.send_json({"data": [{"id": "a", "owned_by": "vllm"}, {"id": "b", "owned_by": "vllm"}]})
    with FakeServer({"GET /v1/models": two}) as server:
        line = _error(server.url)
    assert "serves 2 models: a, b" in line and f"{server.url}#a" in line


def test_cancel_closes_a_stalled_stream_at_once() -> None:
    """The server sends one token and then nothing: Esc must not wait for it."""
    ref: list[FakeServer] = []
    stall_s = 30.0
    with FakeServer(vllm_like(stream_then_stall(ref, stall_s))) as server:
        ref.append(server)
        backend = _load(server.url, timeout_s=60)
        cancel = threading.Event()
        start = time.monotonic()
        tokens = []
        for token in backend.generate(backend.tokenize("Hi", add_bos=True), 50, cancel=cancel):
            tokens.append(token.id)
            threading.Timer(0.2, cancel.set).start()  # Esc while the read is blocked
        elapsed = time.monotonic() - start
        assert tokens == [65] and backend.stop_reason == "cancelled"
        assert server.disconnected.wait(5)  # the server saw the client leave
        assert elapsed < stall_s / 3  # ended by the cancel, not by the server
        backend.close()


@pytest.mark.models
def test_cancel_closes_a_scoring_request_the_server_sits_on() -> None:
    """Esc while the server is computing the check: the answer stops at once with the
    draft so far (demo drafter here, a fake base that never answers the check)."""
    from wsd_local.settings import DecodingSettings, RuntimeSettings
    from wsd_local.engine import Engine

    ref: list[FakeServer] = []
    with FakeServer(vllm_like(scoring_then_stall(ref))) as server:
        ref.append(server)
        engine = Engine.load(base=server.url, runtime=RuntimeSettings(n_ctx=512, n_gpu_layers=0),
                             remote=RemoteOptions(timeout_s=60))
        try:
            cancel = threading.Event()

            def press_esc_once_the_server_sits_on_the_check() -> None:
                if server.stalling.wait(60):
                    time.sleep(0.2)
                    cancel.set()

            threading.Thread(target=press_esc_once_the_server_sits_on_the_check, daemon=True).start()
            trace = engine.run("Hi", DecodingSettings(mode="paper", max_tokens=32, draft_max_tokens=8), cancel)
            assert trace.stop_reason == "cancelled" and trace.answer == trace.draft_text and trace.answer
            assert server.disconnected.wait(5)
            # Ended by Esc, not by the 60 s timeout: the check took well under that.
            assert cancel.is_set() and trace.timings["score_s"] < 30
        finally:
            engine.close()


def test_cli_unreachable_server_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--base", "http://127.0.0.1:9/v1", "--mode", "base", "Hi"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0  # a valid command that failed while it ran
    assert err.startswith("wsd: error: cannot reach the model server at http://127.0.0.1:9/v1")


def test_cli_unreachable_drafter_server_is_one_line_naming_the_drafter(capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["generate", "--drafter", "http://127.0.0.1:9/v1", "--mode", "draft", "Hi"])
    err = capsys.readouterr().err.strip()
    assert code == 1 and err.count("\n") == 0
    assert err.startswith("wsd: error: cannot reach the drafter's model server at http://127.0.0.1:9/v1")


@pytest.mark.models
def test_a_token_id_past_the_vocabulary_stops_the_answer_and_keeps_it(
        capsys: pytest.CaptureFixture[str], demo_engine) -> None:
    """A server whose tokenizer is the demo drafter's (so its vocabulary is adopted and
    its ids are detokenized locally) streams a token id past the end of that
    vocabulary. llama.cpp would abort the process on it; instead the answer stops there,
    keeps what was written, and the command says why in one line (exit 1)."""
    from fake_servers import FakeHandler

    local = demo_engine.drafter  # the server's tokenizer (read only: no decoding)
    bad_id = local.n_vocab + 5
    good = local.tokenize(" Fine, thanks", add_bos=False)

    def tokenize(h: FakeHandler, body) -> None:
        ids = local.tokenize(str(body.get("prompt", "")), add_bos=bool(body.get("add_special_tokens")), special=True)
        h.send_json({"tokens": ids, "token_strs": [local.token_text(t) for t in ids], "count": len(ids),
                     "max_model_len": 2048})

    def completions(h: FakeHandler, body) -> None:
        if not body.get("stream"):  # scoring: every draft token is likely, so the switch comes early
            prompt = body.get("prompt") or []
            entries = [None] + [{str(t): {"logprob": -0.01, "rank": 1}} for t in prompt[1:]]
            h.send_json({"choices": [{"index": 0, "text": "", "prompt_logprobs": entries, "finish_reason": "length"}]})
            return
        h.send_response(200)
        h.send_header("Content-Type", "text/event-stream")
        h.end_headers()
        for token in [*good, bad_id, *good]:
            event = {"choices": [{"index": 0, "text": local.token_bytes(token).decode() if token != bad_id else "?",
                                  "finish_reason": None, "logprobs": {
                                      "tokens": [f"token_id:{token}"], "token_logprobs": [-0.1],
                                      "top_logprobs": [{f"token_id:{token}": -0.1}]}}]}
            h.wfile.write(f"data: {json.dumps(event)}\n\n".encode())
        h.wfile.write(b"data: [DONE]\n\n")
        h.wfile.flush()

    routes = {"GET /v1/models": models("vllm", "fake", max_model_len=2048), "POST /tokenize": tokenize,
              "POST /v1/completions": completions}
    with FakeServer(routes) as server:
        code = main(["generate", "--base", server.url, "--mode", "paper", "--draft-max-tokens", "8",
                     "--max-tokens", "40", "--json", "--no-log", "Say something."])
    out, err = capsys.readouterr()
    trace = json.loads(out)
    assert code == 1
    assert trace["models"]["base"]["n_vocab"] == local.n_vocab  # the vocabulary was adopted
    assert trace["stop_reason"] == "server_error"
    note = f"{server.url} sent token id {bad_id}, outside the vocabulary ({local.n_vocab} tokens)"
    assert note in trace["stop_note"]
    assert trace["answer"].endswith(" Fine, thanks")  # what came before the bad id is kept
    assert err.strip().count("\n") == 0 and note in err and "Traceback" not in err


def test_a_tokenizer_answer_with_a_negative_id_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    def tokenize(h, body) -> None:
        h.send_json({"tokens": [5, -3], "token_strs": ["a", "b"], "count": 2})

    routes = {"GET /v1/models": models("vllm", "fake", max_model_len=2048), "POST /tokenize": tokenize}
    with FakeServer(routes) as server:
        line = _error(server.url)
    assert "answered /tokenize with token id -3, outside the vocabulary (ids start at 0)" in line


@pytest.mark.models
def test_the_local_tokenizer_refuses_ids_outside_its_vocabulary(demo_engine) -> None:
    """The last guard, whatever the path an id took: an exception, not an abort."""
    from wsd_local.errors import WsdError

    drafter = demo_engine.drafter
    for token in (-1, drafter.n_vocab, 2**40):
        for read in (drafter.token_bytes, drafter.token_text, drafter.is_end_of_generation):
            with pytest.raises(WsdError, match=f"token id {token} is outside the vocabulary"):
                read(token)


def _tokenize_without_chat_template(h, body) -> None:
    """vLLM's answer to /tokenize with messages when the model has no chat template."""
    if "messages" in body:
        h.send_json({"error": {"message": "As of transformers v4.44, default chat template is no longer "
                                          "allowed, so you must provide a chat template if the tokenizer "
                                          "does not define one.", "type": "BadRequestError", "code": 400}}, 400)
        return
    tokenize_bytes(h, body)


@pytest.mark.parametrize("tokenize, expected", [
    (_tokenize_without_chat_template, "cannot apply a chat template to a conversation (HTTP 400: As of"),
    (None, "has no /tokenize (HTTP 404"),
])
def test_a_drafter_server_without_a_chat_template_is_refused_in_one_line(tokenize, expected) -> None:
    """Fake servers (error paths): the drafter's prompt needs the server's chat template."""
    routes = {"GET /v1/models": models("vllm", "fake", max_model_len=2048)}
    if tokenize is not None:
        routes["POST /tokenize"] = tokenize
    with FakeServer(routes) as server:
        with pytest.raises(RemoteError) as info:
            RemoteBackend(parse_remote_spec(server.url), "drafter", RemoteOptions())
    line = info.value.one_line()
    assert "\n" not in line and line.startswith(f"the drafter's model server at {server.url}")
    assert expected in line
    assert ("--chat-template" in line) if tokenize is not None else ("WSD's drafter needs a vLLM server" in line)
