"""The chat app with its base model on vLLM: the status line says where the base model
runs, and an answer streams with both spans."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_tui_chat import QUICK, SIZE, answers, assert_matches_trace, sync, type_text, wait_until

from wsd_local.store import COMPLETE, Store
from tui.app import WsdChatApp


@sync
async def test_chat_with_a_remote_base(shared_engine: Any, smollm2: Any, tmp_path: Path) -> None:
    store = Store(tmp_path / "chats.sqlite3")
    app = WsdChatApp(engine=shared_engine, store=store, settings=QUICK)
    async with app.run_test(size=SIZE) as pilot:
        screen = app.chat_screen
        status = str(screen.status.render())
        host = smollm2.url.split("//")[1].split("/")[0]
        assert f"smollm2 @ {host} (vLLM)" in status and "CPU + vLLM" in status
        await type_text(pilot, "How do I make my neighbour's dog stop barking?")
        await pilot.press("enter")
        await wait_until(pilot, lambda: answers(app) and screen.lifecycle.idle, "the answer")
        [chat] = store.list_chats()
        message = store.messages(chat.id)[1]
        assert message.status == COMPLETE and message.trace is not None
        assert message.trace.models["base"].engine == "vLLM"
        assert_matches_trace(answers(app)[0], message.trace)


@sync
async def test_chat_with_both_models_on_vllm(smollm2: Any, tmp_path: Path) -> None:
    """`wsd chat --drafter URL --base URL`: the status line names both servers and no
    local backend; the answer streams and matches its stored trace."""
    from conftest import options

    from wsd_local.settings import RuntimeSettings
    from wsd_local.engine import Engine

    engine = Engine.load(drafter=smollm2.url, base=smollm2.url, runtime=RuntimeSettings(n_ctx=2048, n_gpu_layers=0),
                         remote=options(smollm2))
    store = Store(tmp_path / "chats.sqlite3")
    app = WsdChatApp(engine=engine, store=store, settings=QUICK)
    try:
        async with app.run_test(size=SIZE) as pilot:
            screen = app.chat_screen
            status = str(screen.status.render())
            host = smollm2.url.split("//")[1].split("/")[0]
            assert status.count(f"smollm2 @ {host} (vLLM)") == 2 and "CPU" not in status
            await type_text(pilot, "Hi")
            await pilot.press("enter")
            await wait_until(pilot, lambda: answers(app) and screen.lifecycle.idle, "the answer")
            [chat] = store.list_chats()
            message = store.messages(chat.id)[1]
            assert message.status == COMPLETE and message.trace is not None
            assert message.trace.models["drafter"].engine == "vLLM" and message.trace.backend == "vLLM"
            assert_matches_trace(answers(app)[0], message.trace)
    finally:
        engine.close()
