"""`nudging`: the models take turns; the drafter writes words where the base model is
unsure (docs/NUDGING.md)."""

from .mode import BASE, COMMON_SETTINGS, DRAFTER, Mode, Records

NUDGING_MODE = Mode(
    name="nudging", models=(DRAFTER, BASE), records=Records.HANDOVERS,
    description="the drafter writes words where the base model is unsure",
    title="Nudging", color="#e7298a",
    # Its loop guards are the reference's own, so the repetition stop does not apply.
    settings=COMMON_SETTINGS + ("nudge_threshold", "nudge_tokens"),
    decoder="wsd_local.nudging:NudgingDecoder")
