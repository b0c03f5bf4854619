"""`--base URL[#model]`, the API key, and where remote models may go (offline)."""

from __future__ import annotations

import pytest

from wsd_local.backend.remote_spec import RemoteOptions, is_remote_spec, parse_remote_spec
from wsd_local.errors import ConfigError, ModelError
from wsd_local.models import registry
from wsd_local.models.resolve import REMOTE_SOURCE, remote_spec_for, resolve_model
from wsd_local.trace import ModelIdentity, Trace


@pytest.mark.parametrize("text, api_url, model", [
    ("http://gpu-box:8000/v1", "http://gpu-box:8000/v1", None),
    ("http://gpu-box:8000", "http://gpu-box:8000/v1", None),
    ("http://gpu-box:8000/v1/", "http://gpu-box:8000/v1", None),
    ("https://example.org/proxy/vllm", "https://example.org/proxy/vllm/v1", None),
    ("http://gpu-box:8000/v1#meta-llama/Llama-3.1-70B", "http://gpu-box:8000/v1", "meta-llama/Llama-3.1-70B"),
    (" http://10.0.0.5:8000/v1# ", "http://10.0.0.5:8000/v1", None),
])
def test_urls_are_normalised(text: str, api_url: str, model: str | None) -> None:
    spec = parse_remote_spec(text)
    assert (spec.api_url, spec.model) == (api_url, model)
    assert spec.root + "/v1" == spec.api_url


@pytest.mark.parametrize("text, words", [
    ("http://user:secret@gpu-box:8000/v1", "credentials"),
    ("http://gpu-box:8000/v1?api_key=secret", "query string"),
    ("ftp://gpu-box/v1", "not a server URL"),
    ("http://gpu-box:port/v1", "not a server URL"),
])
def test_bad_urls_are_one_line_errors(text: str, words: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_remote_spec(text)
    line = info.value.one_line()
    assert words in line and "\n" not in line
    assert "secret" not in line  # a key typed into the URL is not echoed back


def test_api_key_comes_from_the_flag_or_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WSD_API_KEY", "from-env")
    assert RemoteOptions.from_env().api_key == "from-env"
    assert RemoteOptions.from_env("from-flag").api_key == "from-flag"
    monkeypatch.delenv("WSD_API_KEY")
    assert RemoteOptions.from_env().api_key is None
    assert "from-flag" not in repr(RemoteOptions.from_env("from-flag"))
    with pytest.raises(ConfigError):
        RemoteOptions(timeout_s=0)


def test_either_model_may_be_a_server(isolated_data_dir) -> None:
    assert is_remote_spec("HTTP://gpu-box:8000") and not is_remote_spec("models/x.gguf")
    for role in ("drafter", "base"):
        assert remote_spec_for("http://gpu-box:8000", role).api_url == "http://gpu-box:8000/v1"
        assert remote_spec_for("smollm2-135m", role) is None
        assert remote_spec_for(None, role) is None
        with pytest.raises(ModelError):
            resolve_model("http://gpu-box:8000", role)


def test_a_registered_server_name_resolves_to_its_url(isolated_data_dir) -> None:
    registry.register("gpu70b", "http://gpu-box:8000/v1#llama-70b", "base", REMOTE_SOURCE)
    try:
        spec = remote_spec_for("gpu70b", "base")
        assert (spec.api_url, spec.model) == ("http://gpu-box:8000/v1", "llama-70b")
        with pytest.raises(ModelError) as info:
            resolve_model("gpu70b", "base")
        assert "model server" in info.value.one_line()
    finally:
        registry.unregister("gpu70b")


def test_remote_identity_is_labelled_and_round_trips() -> None:
    remote = ModelIdentity(role="base", name="Llama-3.1-70B", path="http://gpu-box:8000/v1",
                           architecture="remote", quantization="server", size_bytes=0, engine="vLLM")
    local = ModelIdentity(role="drafter", name="pilot-3b", path="/m/pilot.gguf", architecture="llama",
                          quantization="Q4_K_M", size_bytes=1)
    assert remote.label == "Llama-3.1-70B @ gpu-box:8000 (vLLM)" and remote.remote
    assert local.label == "pilot-3b" and not local.remote
    assert ModelIdentity.from_dict({**remote.__dict__}) == remote
    # Traces written before `engine` existed still load.
    old = {k: v for k, v in local.__dict__.items() if k != "engine"}
    assert ModelIdentity.from_dict(old) == local


def test_stop_note_round_trips(tmp_path) -> None:
    from wsd_local.settings import DecodingSettings

    trace = Trace(settings=DecodingSettings(), messages=[], stop_reason="connection_lost",
                  stop_note="the continuation stopped: connection lost")
    again = Trace.from_json(trace.to_json())
    assert (again.stop_reason, again.stop_note) == ("connection_lost", "the continuation stopped: connection lost")


def test_online_chunks_are_larger_for_a_server_unless_given() -> None:
    from wsd_local.backend.remote import REMOTE_CHUNK_TOKENS
    from wsd_local.cli import build_parser
    from wsd_local.cli.options import settings_from_args

    parser = build_parser()

    def chunk(*argv: str) -> int:
        return settings_from_args(parser.parse_args(list(argv))).chunk_tokens

    assert chunk("generate", "--base", "http://gpu-box:8000/v1", "q") == REMOTE_CHUNK_TOKENS > 16
    assert chunk("generate", "--base", "http://gpu-box:8000/v1", "--chunk-tokens", "8", "q") == 8
    assert chunk("generate", "q") == 16
    assert chunk("bench", "--base", "http://gpu-box:8000/v1") == REMOTE_CHUNK_TOKENS


def test_an_eval_run_names_a_model_on_a_server_by_its_url(isolated_data_dir) -> None:
    """`wsd eval run --drafter URL --base URL`: the run records each server model as
    URL#model (the run's identity, and what a resumed run connects to)."""
    from wsd_local.eval.records import fingerprint
    from wsd_local.eval.resume import run_models
    from wsd_local.settings import DecodingSettings

    models = run_models({"drafter": "http://gpu-box:8001#pilot", "base": "http://gpu-box:8000/v1"}, None)
    assert models["drafter"] == {"name": "http://gpu-box:8001#pilot", "path": "http://gpu-box:8001/v1#pilot",
                                 "file": "http://gpu-box:8001/v1#pilot", "size_bytes": 0}
    assert models["base"]["path"] == "http://gpu-box:8000/v1"
    header = {"models": models}
    resumed = run_models({"drafter": None, "base": None}, header)
    assert [resumed[r]["path"] for r in ("drafter", "base")] == [models[r]["path"] for r in ("drafter", "base")]
    other = run_models({"drafter": "http://gpu-box:8001#other", "base": "http://gpu-box:8000/v1"}, None)
    assert fingerprint(DecodingSettings(), other) != fingerprint(DecodingSettings(), models)
