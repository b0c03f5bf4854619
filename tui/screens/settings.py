"""Per-chat settings: system prompt, mode, switch rule, nudging, token limits, sampling."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Grid, Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from wsd_local.settings import SETTINGS, DecodingSettings, SettingSpec
from wsd_local.errors import WsdError


class SettingsScreen(ModalScreen[DecodingSettings | None]):
    """Edit a chat's settings; Ctrl+S saves (after validation), Esc cancels."""

    BINDINGS = [Binding("escape", "dismiss", "Cancel"), Binding("ctrl+s", "save", "Save", priority=True)]

    def __init__(self, settings: DecodingSettings, chat_title: str | None = None) -> None:
        super().__init__()
        self.settings = settings
        self.chat_title = chat_title

    def compose(self) -> ComposeResult:
        """The form, one field per declared setting (`wsd_local.settings.SETTINGS`)."""
        with Vertical(classes="dialog settings-dialog"):
            title = f"Settings — {self.chat_title}" if self.chat_title else "Settings for the next chat"
            yield Label(title, classes="dialog-title")
            with VerticalScroll(id="settings-form"):
                for spec in SETTINGS:
                    if spec.multiline:
                        yield Label(f"{spec.label} (this chat; empty for none)")
                        yield TextArea(spec.format(getattr(self.settings, spec.name)), id=spec.name,
                                       soft_wrap=True, tab_behavior="focus")
                with Grid(id="settings-grid"):
                    for spec in SETTINGS:
                        if not spec.multiline:
                            yield Label(spec.label, classes="field-label")
                            yield self._field(spec)
            yield Static("Threshold in (0, 1]; temperature 0 is greedy; chunk tokens apply to "
                         "the online wsd mode, the nudge settings to the nudging mode.",
                         classes="dialog-hint")
            yield Static("", id="settings-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", variant="primary", id="save")
                yield Button("Cancel (esc)", id="cancel")

    def _field(self, spec: SettingSpec) -> Select | Checkbox | Input:
        value = getattr(self.settings, spec.name)
        if spec.choices:
            return Select([(c, c) for c in spec.choices], value=value, allow_blank=False,
                          id=spec.name, tooltip=spec.help)
        if spec.kind is bool:
            return Checkbox(value=bool(value), id=spec.name, tooltip=spec.help)
        kind = {int: "integer", float: "number"}.get(spec.kind, "text")
        return Input(spec.format(value), id=spec.name, type=kind, tooltip=spec.help)

    def on_mount(self) -> None:
        first_text = next((s for s in SETTINGS if s.multiline), None)
        if first_text is not None:
            self.query_one(f"#{first_text.name}", TextArea).focus()

    def read_settings(self) -> DecodingSettings:
        """The form as settings; raises WsdError with a one-line reason."""
        values: dict[str, object] = {}
        for spec in SETTINGS:
            widget = self.query_one(f"#{spec.name}")
            if isinstance(widget, TextArea):
                text = widget.text
                values[spec.name] = text if text.strip() else (None if spec.optional else "")
            elif isinstance(widget, Select):
                values[spec.name] = str(widget.value)
            elif isinstance(widget, Checkbox):
                values[spec.name] = widget.value
            else:
                assert isinstance(widget, Input)
                values[spec.name] = spec.parse(widget.value)
        return DecodingSettings(**values)  # validates

    def action_save(self) -> None:
        try:
            settings = self.read_settings()
        except WsdError as exc:
            self.query_one("#settings-error", Static).update(f"⚠ {exc.one_line()}")
            return
        self.dismiss(settings)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        event.stop()
        if event.button.id == "save":
            self.action_save()
        else:
            self.dismiss(None)
