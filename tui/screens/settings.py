"""Per-chat settings: system prompt, mode, switch rule, token limits, sampling."""

from __future__ import annotations

from dataclasses import fields

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Select, Static, TextArea

from wsd_local.config import MODES, DecodingSettings
from wsd_local.errors import WsdError

#: (field, label, kind) for the numeric fields, in the order shown.
NUMBER_FIELDS: tuple[tuple[str, str, type], ...] = (
    ("threshold", "Threshold γ", float),
    ("window", "Window w", int),
    ("draft_max_tokens", "Draft max tok", int),
    ("max_tokens", "Answer max tok", int),
    ("chunk_tokens", "Chunk tokens", int),
    ("temperature", "Temperature", float),
    ("top_p", "Top-p", float),
    ("seed", "Seed", int),
)


class SettingsScreen(ModalScreen[DecodingSettings | None]):
    """Edit a chat's settings; Ctrl+S saves (after validation), Esc cancels."""

    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("ctrl+s", "save", "Save", priority=True)]

    def __init__(self, settings: DecodingSettings, chat_title: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.chat_title = chat_title

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog settings-dialog"):
            title = f"Settings — {self.chat_title}" if self.chat_title else "Settings for the next chat"
            yield Label(title, classes="dialog-title")
            with VerticalScroll(id="settings-form"):
                yield Label("System prompt (this chat; empty for none)")
                yield TextArea(self.settings.system or "", id="system", soft_wrap=True,
                               tab_behavior="focus")
                with Grid(id="settings-grid"):
                    yield Label("Mode", classes="field-label")
                    yield Select([(m, m) for m in MODES], value=self.settings.mode, allow_blank=False,
                                 id="mode")
                    for name, label, kind in NUMBER_FIELDS:
                        yield Label(label, classes="field-label")
                        yield Input(str(getattr(self.settings, name)), id=name,
                                    type="integer" if kind is int else "number")
            yield Static("Threshold in (0, 1]; temperature 0 is greedy; chunk tokens apply to "
                         "the online wsd mode.", classes="dialog-hint")
            yield Static("", id="settings-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def on_mount(self) -> None:
        self.query_one("#system", TextArea).focus()

    def read_settings(self) -> DecodingSettings:
        """The form as settings; raises WsdError with a one-line reason."""
        values: dict[str, object] = {}
        for name, label, kind in NUMBER_FIELDS:
            raw = self.query_one(f"#{name}", Input).value.strip()
            try:
                values[name] = kind(raw)
            except ValueError:
                what = "a whole number" if kind is int else "a number"
                raise WsdError(f"{label} must be {what}, got {raw!r}") from None
        system = self.query_one("#system", TextArea).text
        values["system"] = system if system.strip() else None
        values["mode"] = str(self.query_one("#mode", Select).value)
        known = {f.name for f in fields(DecodingSettings)}
        return DecodingSettings(**{k: v for k, v in values.items() if k in known})  # validates

    def action_save(self) -> None:
        try:
            settings = self.read_settings()
        except WsdError as exc:
            self.query_one("#settings-error", Static).update(f"⚠ {exc.one_line()}")
            return
        self.dismiss(settings)

    def action_cancel(self) -> None:
        self.dismiss(None)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.action_cancel()
