"""`wsd bench`: the fixed prompt set, the measurements, and the report."""
