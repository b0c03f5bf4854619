"""Pure data preparation of the inspector: colours, layout, chart rows, token views."""

from __future__ import annotations

import pytest
from test_tui_inspector_support import load_sample, synthetic_trace

from tui.inspector_widgets.cells import Cell
from tui.inspector_widgets.chart import (
    GUTTER,
    ChartSpec,
    band_ranges,
    bar_glyphs,
    chart_rows,
    threshold_glyph,
    threshold_row,
)
from tui.inspector_widgets.colors import VIRIDIS, contrast_text, prob_bucket, prob_color
from tui.inspector_widgets.heatmap import SWITCH_MARK, WHATIF_MARK, heatmap_items, heatmap_rows
from tui.inspector_widgets.layout import (
    EMPTY_GLYPH,
    NEWLINE_GLYPH,
    Item,
    layout,
    nearest_on_row,
    token_items,
    token_rows,
)
from tui.inspector_widgets.tokens import compute_what_if, describe_token, token_views, what_if_summary
from wsd_local.switch import window_scores
from wsd_local.trace import Trace


@pytest.fixture
def sample() -> Trace:
    return load_sample()


# -- colours ------------------------------------------------------------------------
@pytest.mark.parametrize("p,bucket", [(0.0, 0), (-1.0, 0), (float("nan"), 0), (0.05, 0),
                                      (0.1, 1), (0.55, 5), (0.999, 9), (1.0, 9), (7.0, 9)])
def test_prob_bucket(p: float, bucket: int) -> None:
    assert prob_bucket(p) == bucket


def test_prob_bucket_is_monotonic_and_colours_come_from_the_scale() -> None:
    buckets = [prob_bucket(i / 1000) for i in range(1001)]
    assert buckets == sorted(buckets)
    assert set(buckets) == set(range(len(VIRIDIS)))
    assert prob_color(0.0) == VIRIDIS[0] and prob_color(1.0) == VIRIDIS[-1]


def test_text_contrasts_with_dark_and_light_ends_of_the_scale() -> None:
    assert contrast_text(VIRIDIS[0]) == "#ffffff"
    assert contrast_text(VIRIDIS[-1]) == "#000000"


# -- layout -------------------------------------------------------------------------
def test_token_items_make_newlines_visible_and_break_lines() -> None:
    items = token_items(3, "a\n\nb")
    assert [(i.text, i.kind) for i in items] == [
        ("a", "token"), (NEWLINE_GLYPH, "token"), ("", "break"),
        (NEWLINE_GLYPH, "token"), ("", "break"), ("b", "token")]
    assert all(i.token == 3 for i in items if i.kind == "token")
    assert token_items(0, "")[0].text == EMPTY_GLYPH  # mid-character token stays selectable
    assert token_items(0, "\tx")[0].text == "⇥x"


def test_layout_never_splits_a_token_that_fits_and_folds_one_that_does_not() -> None:
    items = [Item(t, "token", i) for i, t in enumerate(["abc", " de", " fghij", "k" * 12])]
    lines = layout(items, 8)
    plain = ["".join(p.text for p in line) for line in lines]
    assert plain == ["abc de", " fghij", "kkkkkkkk", "kkkk"]
    assert all(len(line) <= 8 for line in plain)
    rows = token_rows(lines, items)
    assert rows[2] == [(1, 0)] and rows[3] == [(2, 0), (3, 0)]


def test_layout_counts_wide_characters_as_two_cells() -> None:
    lines = layout([Item("日本", "token", 0), Item("語", "token", 1)], 5)
    assert ["".join(p.text for p in line) for line in lines] == ["日本", "語"]


def test_nearest_on_row_picks_the_token_under_the_column() -> None:
    items = [Item("aaaa", "token", 0), Item("bb", "token", 1), Item("", "break"),
             Item("c", "token", 2), Item("dddddd", "token", 3)]
    lines = layout(items, 20)
    assert nearest_on_row(lines, items, 1, 4) == 3
    assert nearest_on_row(lines, items, 0, 5) == 1
    assert nearest_on_row(lines, items, 5, 0) is None


# -- token views and what-if ----------------------------------------------------------
def test_token_views_split_kept_discarded_and_base(sample: Trace) -> None:
    views = token_views(sample)
    k = sample.switch_index
    assert k is not None
    n, m = len(sample.draft_tokens), len(sample.continuation_tokens)
    assert len(views) == n + m
    assert [v.kind for v in views] == ["kept"] * (k + 1) + ["discarded"] * (n - k - 1) + ["base"] * m
    assert "".join(v.text for v in views if v.kind == "kept") == sample.kept_draft
    assert "".join(v.text for v in views if v.kind == "base") == sample.continuation
    assert views[5].prob == pytest.approx(sample.draft_token_probs[5])


@pytest.mark.parametrize("threshold", [0.3, 0.5, 0.65, 0.8, 0.9, 0.99, 1.0])
@pytest.mark.parametrize("window", [1, 2, 4, 6, 10, 200])
def test_what_if_agrees_with_the_trace(sample: Trace, threshold: float, window: int) -> None:
    w = compute_what_if(sample, threshold, window)
    assert w.index == sample.what_if(threshold, window).index
    assert list(w.scores) == window_scores(sample.draft_token_probs, window)
    assert w.fired == any(g >= threshold for g in w.scores[window - 1:])


def test_what_if_without_a_switch_point(sample: Trace) -> None:
    sample.switch_index = None  # a base-only or drafter-only answer
    w = compute_what_if(sample, 0.5, 6)
    assert w.index is None and not w.fired
    assert "no switch point" in what_if_summary(sample, w)


def test_what_if_summary_reports_the_move(sample: Trace) -> None:
    k = sample.switch_index
    assert k is not None
    earlier = compute_what_if(sample, 0.65, 6)
    assert earlier.index is not None and earlier.index < k
    text = what_if_summary(sample, earlier)
    assert f"switch at {earlier.index}" in text and f"({k - earlier.index} earlier)" in text
    assert "(as answered)" in what_if_summary(sample, compute_what_if(sample, 0.8, 6))
    never = compute_what_if(sample, 1.0, 6)
    assert "all kept" in what_if_summary(sample, never)
    # online: the drafter stopped at its switch, so a switch past the scored tokens is unknown
    sample.settings, sample.draft_complete = sample.settings.with_changes(mode="wsd"), False
    unknown = compute_what_if(sample, 1.0, 6)
    assert unknown.index is None and not unknown.known and unknown.unknown_past == 198
    assert "unknown past token 198" in what_if_summary(sample, unknown)
    assert compute_what_if(sample, 0.65, 6).index == earlier.index  # inside the scored part: known


def test_describe_token_names_writer_probability_and_window(sample: Trace) -> None:
    views = token_views(sample)
    w = compute_what_if(sample, sample.threshold, sample.window)
    k = sample.switch_index
    assert k is not None
    line = describe_token(views[k], w, k)
    assert "drafter, kept" in line and "▲ switch" in line
    assert f"p {views[k].prob:.3f}" in line and f"window {w.scores[k]:.3f} ≥ γ 0.80" in line
    assert "drafter, discarded" in describe_token(views[k + 1], w, k)
    assert "window — (needs 6 tokens)" in describe_token(views[0], w, k)
    base = describe_token(views[-1], w, k)
    assert base.startswith(f"base token {len(sample.continuation_tokens) - 1}") and "base model" in base
    newline = next(v for v in views if v.text == "\n\n")
    assert "'\\n\\n'" in describe_token(newline, w, k)  # whitespace shown escaped


# -- heatmap ----------------------------------------------------------------------------
def test_heatmap_markers_follow_switch_and_what_if(sample: Trace) -> None:
    views = token_views(sample)
    k = sample.switch_index
    assert k is not None
    items = heatmap_items(views, k, k - 10)
    order = [(i.kind, i.token, i.text) for i in items if i.kind in ("token", "marker")]
    marks = [n for n, (kind, _, _) in enumerate(order) if kind == "marker"]
    assert [order[n][2] for n in marks] == [WHATIF_MARK, SWITCH_MARK]
    before = [t for kind, t, _ in order[: marks[0]] if kind == "token"]
    assert before[-1] == k - 10
    between = [t for kind, t, _ in order[marks[0]: marks[1]] if kind == "token"]
    assert between[-1] == k
    headers = [i.text for i in items if i.kind == "header"]
    assert headers[0].startswith(f"Draft · {k + 1} kept") and headers[1].startswith("Base continuation")
    # the same switch and what-if: one marker only
    assert sum(i.kind == "marker" for i in heatmap_items(views, k, k)) == 1


def test_heatmap_rows_style_discarded_and_selected_tokens(sample: Trace) -> None:
    views = token_views(sample)
    k = sample.switch_index
    assert k is not None
    items = heatmap_items(views, k, k)
    rows = heatmap_rows(items, layout(items, 60), views, selected=3)
    cells = [c for row in rows for c in row if c.token is not None]
    assert any("strike" in c.style for c in cells if c.token == k + 1)
    assert not any("strike" in c.style for c in cells if c.token == k)
    assert all("reverse" in c.style for c in cells if c.token == 3)
    assert VIRIDIS[prob_bucket(views[0].prob)] in next(c.style for c in cells if c.token == 0)


def test_heatmap_shows_plain_text_when_nothing_was_scored() -> None:
    items = heatmap_items([], None, None, answer="drafter only\nanswer")
    plain = ["".join(p.text for p in line) for line in layout(items, 80)]
    assert plain[0].startswith("No per-token probabilities")
    assert plain[1:] == ["drafter only", "answer"]


# -- chart ------------------------------------------------------------------------------
def test_bar_glyphs_in_eighths() -> None:
    assert bar_glyphs(0.0, 2) == [" ", " "]
    assert bar_glyphs(1.0, 2) == ["█", "█"]
    assert bar_glyphs(0.5, 2) == [" ", "█"]
    assert bar_glyphs(0.75, 2) == ["▄", "█"]
    assert bar_glyphs(0.001, 2) == [" ", "▁"]  # tiny but not zero stays visible


def test_threshold_row_and_glyph() -> None:
    assert threshold_row(0.8, 5) == 1 and threshold_glyph(0.8, 5) == "▔"  # top of (0.6, 0.8]
    assert threshold_row(0.65, 5) == 1 and threshold_glyph(0.65, 5) == "▁"
    assert threshold_row(0.5, 5) == 2 and threshold_glyph(0.5, 5) == "─"
    assert threshold_row(1.0, 5) == 0 and threshold_glyph(1.0, 5) == "▔"
    assert threshold_row(0.01, 5) == 4 and threshold_glyph(0.01, 5) == "▁"


def test_chart_wraps_500_tokens_into_bands_with_markers() -> None:
    trace = synthetic_trace(500, switch_at=300)
    scores = tuple(trace.window_scores)
    spec = ChartSpec(scores, 0.8, 6, switch=trace.switch_index, what_if=120, selected=42,
                     height=6)  # 0.8 on 6 rows: row (0.667, 0.833], second from the top
    width = 120
    rows = chart_rows(spec, width)
    bands = band_ranges(500, width - GUTTER)
    assert len(bands) == 5 and bands[-1] == (456, 500)
    assert len(rows) == len(bands) * (6 + 3) - 1
    assert all(len(Cell.plain(r)) <= width for r in rows)
    # every draft token has exactly one bar column per row of its band
    columns = [c.token for r in rows for c in r[1:] if c.token is not None]
    assert sorted(set(columns)) == list(range(500))
    markers = {c.token: c.text for r in rows for c in r if c.text in "▲△•" and c.token is not None}
    assert markers == {trace.switch_index: "▲", 120: "△", 42: "•"}
    # bars at or above the threshold are drawn in the "above" colour
    switch_cells = [c for r in rows for c in r if c.token == trace.switch_index and c.text.strip()]
    assert switch_cells and all(c.style.startswith("#e69f00") for c in switch_cells if c.text != "▲")
    assert "0.80 ┤" in Cell.plain(rows[threshold_row(0.8, 6)])
    assert Cell.plain(rows[7]).split()[:3] == ["tok", "0", "10"]


def test_chart_of_an_empty_draft() -> None:
    rows = chart_rows(ChartSpec((), 0.8, 6), 80)
    assert "nothing to chart" in Cell.plain(rows[0])
