"""`base`: the base model alone, from its plain frame (for comparison)."""

from .mode import BASE, COMMON_SETTINGS, Mode, Records

BASE_MODE = Mode(
    name="base", models=(BASE,), records=Records.NOTHING,
    description="the base model alone", title="Base only", color="#e66100",
    settings=COMMON_SETTINGS + ("repetition_stop",),
    decoder="wsd_local.decoder:Decoder")
