"""What clients see of the server's configuration: model files by name, never their
folders or a remote model's address, and never the server's own system prompt."""

from __future__ import annotations

from wsd_local.settings import DecodingSettings
from wsd_local.server.public import public_defaults, public_trace, scrub
from wsd_local.trace import ModelIdentity, Trace

LOCAL = ModelIdentity(role="drafter", name="pilot-3b", path="/home/ann/models/pilot-3b.Q4_K_M.gguf",
                      architecture="llama", quantization="Q4_K_M", size_bytes=1)
REMOTE = ModelIdentity(role="base", name="llama3.1-8b", path="http://gpu-box.lan:8000/v1",
                       architecture="remote", quantization="unknown", size_bytes=0, engine="vLLM")
MODELS = {"drafter": LOCAL, "base": REMOTE}


def test_paths_folders_and_addresses_become_names() -> None:
    note = ("the continuation stopped: cannot reach http://gpu-box.lan:8000/v1 (gpu-box.lan:8000 refused); "
            "drafter /home/ann/models/pilot-3b.Q4_K_M.gguf in /home/ann/models")
    public = scrub(note, MODELS)
    assert "gpu-box" not in public and "/home/ann" not in public
    assert "pilot-3b.Q4_K_M.gguf" in public and "llama3.1-8b" in public


def test_trace_and_defaults_without_paths_or_the_server_prompt() -> None:
    settings = DecodingSettings(system="Secret.")
    trace = Trace(settings=settings, messages=[{"role": "system", "content": "Secret."},
                                               {"role": "user", "content": "Hi"}],
                  models=MODELS, stop_reason="connection_lost", stop_note="lost http://gpu-box.lan:8000/v1")
    data = public_trace(trace, server_system=True)
    assert data["messages"] == [{"role": "user", "content": "Hi"}] and data["settings"]["system"] is None
    assert {role: m["path"] for role, m in data["models"].items()} == {
        "drafter": "pilot-3b.Q4_K_M.gguf", "base": "llama3.1-8b"}
    assert "gpu-box" not in str(data) and "/home/ann" not in str(data) and "Secret." not in str(data)
    Trace.from_dict(data).check()  # still a readable trace
    # The client's own system prompt is its own: kept.
    assert public_trace(trace, server_system=False)["messages"][0]["content"] == "Secret."
    assert public_defaults(settings)["system"] is None and public_defaults(DecodingSettings())["system"] is None
