"""Chat templates render as Hugging Face / llama-cpp-python render them.

The fixtures under tests/data/templates were written for these tests with the structure
of the Llama 3.1, Llama 3.2 and Gemma instruct templates: a dated system header
(`strftime_now`), loop controls (`{% break %}`, `{% continue %}`), tools through
`tojson(indent=...)`, `raise_exception` for a conversation the model does not take.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import pytest

from wsd_local.errors import ModelError
from wsd_local.messages import Message
from wsd_local.templates import _environment, render_chat

TEMPLATES = Path(__file__).parent / "data" / "templates"
CHAT = [Message("system", "Be brief."), Message("user", "Hi"), Message("assistant", "Hello!"),
        Message("user", " What is 2+2? ")]


def template(name: str) -> str:
    return (TEMPLATES / f"{name}.jinja").read_text(encoding="utf-8")


def test_llama_3_1_style_renders_headers_and_its_fixed_date() -> None:
    text = render_chat(template("llama-3.1-style"), CHAT, "<|begin_of_text|>", "<|eot_id|>")
    assert text == (
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Cutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n")


def test_llama_3_2_style_writes_todays_date_and_breaks_out_of_its_loop() -> None:
    text = render_chat(template("llama-3.2-style"), CHAT, "<|begin_of_text|>", "<|eot_id|>")
    today = datetime.now().strftime("%d %b %Y")
    assert f"Today Date: {today}\n\nBe brief.<|eot_id|>" in text
    assert text.endswith("<|start_header_id|>user<|end_header_id|>\n\nWhat is 2+2?<|eot_id|>"
                         "<|start_header_id|>assistant<|end_header_id|>\n\n")
    assert text.count("<|start_header_id|>") == 5  # system, 3 turns, the answer's header


def test_tojson_is_plain_json_with_its_keyword_arguments() -> None:
    """HF's tojson: no HTML escaping, keys kept in order, indent as json.dumps takes it."""
    tool = {"name": "add", "description": "a < b & 'c'", "parameters": {"z": 1, "a": 2}}
    text = _environment().from_string(template("llama-3.1-style")).render(
        messages=[m.to_dict() for m in CHAT[1:2]], tools=[tool], bos_token="", add_generation_prompt=False)
    assert json.dumps(tool, indent=4, ensure_ascii=False) in text


def test_gemma_style_folds_the_system_prompt_and_names_the_model_turn() -> None:
    text = render_chat(template("gemma-style"), CHAT, "<bos>", "<eos>")
    assert text == ("<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n"
                    "<start_of_turn>model\nHello!<end_of_turn>\n"
                    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n")


def test_a_template_that_rejects_the_conversation_says_why_in_one_line() -> None:
    chat = [Message("user", "a"), Message("user", "b")]
    with pytest.raises(ModelError, match="rejected the conversation: Conversation roles must alternate"):
        render_chat(template("gemma-style"), chat, "<bos>", "<eos>")
    with pytest.raises(ModelError, match="chat template failed"):
        render_chat("{{ messages[0]['content'] | nosuchfilter }}", chat, "", "")


@pytest.mark.parametrize("source, problem", [
    # Nested loops that write nothing: 10^15 iterations, stopped by the deadline.
    ("{% for i in range(100000) %}{% for j in range(100000) %}{% for k in range(100000) %}"
     "{% endfor %}{% endfor %}{% endfor %}", "took longer than 0.3 s"),
    ("{% for i in range(100000) %}{% for j in range(100000) %}x{% endfor %}{% endfor %}",
     "wrote more than"),
    ("{{ 'x' * 10000000000 }}", "repeats a value"),
    ("{{ 10 ** 100000000 }}", "computes a power too large"),
    ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s ~ ns.s %}"
     "{% endfor %}{{ ns.s|length }}", "builds a text over the size limit"),
    ("{% set ns = namespace(s='xxxxxxxx') %}{% for i in range(40) %}{% set ns.s = ns.s + ns.s %}"
     "{% endfor %}{{ ns.s|length }}", "builds a value over the size limit"),
    ("x" * 300_000, "is 300,000 characters long, over the limit"),
], ids=["silent-loops", "huge-output", "repeat", "power", "doubling-concat", "doubling-plus", "huge-template"])
def test_a_hostile_template_is_stopped_with_one_line(source: str, problem: str,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Each case meets the one limit it is about: the deadline is short only where the
    deadline is tested, the output limit small only where size is."""
    import sys

    from wsd_local import template_limits

    timed = "took longer" in problem
    monkeypatch.setattr(template_limits, "TIME_LIMIT_S", 0.3 if timed else 600)
    if "wrote more" in problem:
        monkeypatch.setattr(template_limits, "MAX_OUTPUT_CHARS", 10_000)
    tracer = sys.gettrace()
    with pytest.raises(ModelError, match=f"the drafter's chat template {problem}") as caught:
        render_chat(source, [Message("user", "Hi")], "", "")
    assert "\n" not in caught.value.one_line()
    assert sys.gettrace() is tracer  # the render's deadline is gone with it


def test_the_limits_leave_real_templates_alone() -> None:
    for name in ("llama-3.1-style", "llama-3.2-style", "gemma-style"):
        source = template(name)
        assert render_chat(source, CHAT, "<bos>", "<eos>") == _environment().from_string(source).render(
            messages=[m.to_dict() for m in CHAT], add_generation_prompt=True, bos_token="<bos>",
            eos_token="<eos>", tools=None, documents=None)
