"""Developer tools run from a checkout (`python -m devtools.NAME`): the random-weight
checkpoint maker the tests and the GPU check use, and the benchmark studies behind
docs/BENCHMARKS.md. Not part of the installed package."""
