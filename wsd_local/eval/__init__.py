"""`wsd eval`: weak-to-strong decoding over a prompt set, as a research workflow.

- `inputs`: prompt files (JSONL, JSON, CSV; prompt, messages, MT-Bench turns, AlpacaEval,
  HH-RLHF, TruthfulQA, Arena-Hard) read into items, malformed records with line numbers;
- `runfile`: the run file, whole JSON lines appended and fsync'd, torn tail cut on resume;
- `records`: the header and answer records (settings fingerprint, switch, tokens, trace);
- `resume`: which run a command continues (flags vs the file's header, --force);
- `execute`: every prompt x mode x turn once, in order, resumable, Ctrl+C safe;
- `progress`: a bar with ETA on a terminal, plain lines in logs;
- `stats`, `report`, `plots`, `html`: the numbers, the Markdown tables, the pictures, the page;
- `sweep`: the switch for other γ and w from stored paper-mode probabilities, re-runs;
- `export`: AlpacaEval and MT-Bench answer files.

Nothing here imports matplotlib until a plot is asked for (`wsd-local[eval]`).
"""
