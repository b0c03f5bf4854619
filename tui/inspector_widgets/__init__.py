"""Widgets and pure data preparation for the inspector screen.

The modules without Textual imports (`colors`, `tokens`, `layout`, `chart`) are plain
functions over a `Trace`, unit-tested without an app; `heatmap_view` and `chart_view`
wrap them as Line API widgets.
"""
