"""`paper`: the reference pipeline: draft everything, check it in one pass, continue."""

from .mode import BASE, COMMON_SETTINGS, DRAFTER, SWITCH_SETTINGS, Mode, Records

PAPER_MODE = Mode(
    name="paper", models=(DRAFTER, BASE), records=Records.SWITCH,
    description="draft all, then check", title="WSD (paper)", color="#7b3294",
    settings=COMMON_SETTINGS + SWITCH_SETTINGS,
    # The paper's pipeline stays the paper's: no repetition stop unless asked for.
    decoder="wsd_local.decoder:Decoder", auto_stops_repetition=False,
    refuses=("switch_skip_repeats",))
