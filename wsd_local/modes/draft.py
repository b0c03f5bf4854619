"""`draft`: the drafter alone, in its chat template (for comparison)."""

from .mode import COMMON_SETTINGS, DRAFTER, Mode, Records

DRAFT_MODE = Mode(
    name="draft", models=(DRAFTER,), records=Records.NOTHING,
    description="the drafter alone", title="Drafter only", color="#1f78b4",
    settings=COMMON_SETTINGS + ("repetition_stop",),
    decoder="wsd_local.decoder:Decoder")
