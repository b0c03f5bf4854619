"""The inspector's widgets: plain functions over a `Trace` (`colors`, `tokens`, `layout`,
`chart`, tested without an app) and the Line API widgets over them (`*_view`).
"""
