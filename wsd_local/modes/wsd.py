"""`wsd`: online weak-to-strong decoding, the default mode (docs/DESIGN.md, "The decoder")."""

from .mode import BASE, COMMON_SETTINGS, DRAFTER, SWITCH_SETTINGS, Mode, Records

WSD_MODE = Mode(
    name="wsd", models=(DRAFTER, BASE), records=Records.SWITCH,
    description="online weak-to-strong", title="WSD", color="#1b9e77",
    settings=COMMON_SETTINGS + SWITCH_SETTINGS + ("chunk_tokens", "switch_skip_repeats"),
    decoder="wsd_local.decoder:Decoder", online=True)
