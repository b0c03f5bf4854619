"""`wsd eval`: answer a prompt set in several modes, report on it, sweep γ and w.

    wsd eval prompts.jsonl -o runs/hh.jsonl --modes base,draft,wsd   # = wsd eval run ...
    wsd eval report runs/hh.jsonl --html runs/hh.html
    wsd eval sweep runs/hh.jsonl --threshold 0.6:0.95:0.05 --window 2,4,6,8,10
    wsd eval export runs/hh.jsonl --format alpaca_eval

The subcommands are ordinary argparse subparsers; a first word that is not one of
their names is taken as the prompt file of `run`, so the common case needs no verb
(a prompt file literally named `report` is `./report`).
"""

from __future__ import annotations

import argparse
import difflib
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Iterator

from ..settings import DecodingSettings
from ..engine_pool import MAX_CONCURRENCY
from ..eval.export import FORMATS as EXPORT_FORMATS
from ..eval.resume import DEFAULT_MODES
from ..modes import COMPARISON_ORDER, PAPER_MODE, mode_named, names
from .options import (add_decoding_options, add_model_options, given_settings, merged_defaults,
                      parse_modes, remote_from_args, runtime_from_args)
from ..terminal_text import terminal_safe, terminal_safe_json
from .term import ctrl_c_stops


def _print(text: str, **kwargs: Any) -> None:
    """Reports and notes quote prompt files, run files, ids and errors: all from outside."""
    print(terminal_safe(text), **kwargs)

#: `wsd eval` answers with the paper's settings unless flags say otherwise: no
#: repetition stop (`--repetition-stop N` asks for one), so every mode's answers are
#: the models' own.
EVAL_DEFAULTS = DecodingSettings(repetition_stop=0)
SUBCOMMANDS = ("run", "report", "sweep", "export")


class _AnyName(Mapping):
    """Subcommand choices that accept any word (the action turns unknown ones into a
    prompt file for `run`); listing and lookup see the real subcommands."""

    def __init__(self, parsers: dict[str, argparse.ArgumentParser]) -> None:
        self.parsers = parsers

    def __contains__(self, name: object) -> bool:
        return True

    def __getitem__(self, name: str) -> argparse.ArgumentParser:
        return self.parsers[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self.parsers)

    def __len__(self) -> int:
        return len(self.parsers)


class _RunByDefault(argparse._SubParsersAction):
    """`wsd eval FILE ...` means `wsd eval run FILE ...`."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.choices = _AnyName(self._name_parser_map)

    def __call__(self, parser, namespace, values, option_string=None):  # type: ignore[override]
        if values and values[0] not in self._name_parser_map:
            word = values[0]
            close = difflib.get_close_matches(word, list(self._name_parser_map), n=1)
            if close and not Path(word).exists():  # `wsd eval reprot run.jsonl`
                parser.error(f"{word!r} is neither a subcommand nor a file: did you mean {close[0]!r}?")
            values = ["run", *values]
        super().__call__(parser, namespace, values, option_string)


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "eval", help="run a prompt set through the modes; report, plots, γ/w sweep",
        description="Answer a prompt set with base, drafter, paper and online WSD (resumable), "
                    "then report on it and sweep the switch settings.",
        epilog="examples:\n"
               "  wsd eval prompts.jsonl -o runs/hh.jsonl --modes base,draft,wsd\n"
               "  wsd eval report runs/hh.jsonl --html runs/hh.html\n"
               "  wsd eval sweep runs/hh.jsonl --threshold 0.6:0.95:0.05 --window 2,4,6,8,10\n"
               "  wsd eval export runs/hh.jsonl --format alpaca_eval\n"
               "`wsd eval FILE ...` is short for `wsd eval run FILE ...`.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.set_defaults(func=lambda args: (parser.print_help(), 2)[1])
    commands = parser.add_subparsers(dest="eval_command", metavar="{run,report,sweep,export}",
                                     action=_RunByDefault)
    _register_run(commands)
    _register_report(commands)
    _register_sweep(commands)
    _register_export(commands)


# -- run ----------------------------------------------------------------------------------
def _register_run(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("run", help="answer a prompt set in several modes (resumable)",
                            description="Answer every prompt in every mode; one JSON line per "
                                        "answer, saved as it ends. Run the same command again to "
                                        "resume: what is in the output file is skipped.")
    p.add_argument("file", metavar="FILE",
                   help="prompts: .jsonl, .json or .csv (or a bundled set: everyday50)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="OUT",
                   help="the run file (JSON lines; created, or resumed)")
    p.add_argument("--modes", default=None, metavar="LIST",
                   help=f"comma-separated modes of {', '.join(names(COMPARISON_ORDER))} (default: the "
                        f"run's modes when resuming, else {','.join(DEFAULT_MODES)}; the sweep needs "
                        f"{PAPER_MODE.name})")
    p.add_argument("--field", default=None, metavar="NAME",
                   help="the field holding the prompt (text or a messages list; default: prompt, messages, turns, instruction or question, whichever the file has)")
    p.add_argument("--limit", type=int, default=None, metavar="N", help="only the first N prompts (default: all)")
    p.add_argument("--strict", action="store_true",
                   help="stop on the first malformed record (default: report and skip)")
    p.add_argument("--force", action="store_true",
                   help="add answers to an output file made with other settings or prompts")
    p.add_argument("--traces-dir", type=Path, default=None, metavar="DIR",
                   help="write each answer's trace to DIR and keep only its path in the run file "
                        "(default: traces inline)")
    p.add_argument("--format", choices=("jsonl", *EXPORT_FORMATS), default="jsonl",
                   help="also write the answers for an evaluation tool, one file per mode, "
                        "next to OUT (see `wsd eval export`; default: %(default)s, the run file only)")
    p.add_argument("--generator", default=None, metavar="NAME",
                   help="name in exported files (default: mode and model names)")
    p.add_argument("--concurrency", type=int, default=1, metavar="N",
                   help="answers written at once when the models are on model servers (their "
                        "batching does the work); with a local model one at a time whatever N is "
                        "(default: %(default)s)")
    add_model_options(p)
    add_decoding_options(p, defaults=EVAL_DEFAULTS)
    p.set_defaults(func=run_command)


def run_command(args: argparse.Namespace) -> int:
    from ..eval.inputs import InputError, load_prompts
    from ..eval.resume import choose_run
    from ..eval.runfile import read_run
    from ..eval.execute import plan_run

    modes = parse_modes(args.modes) if args.modes is not None else None
    prompts = load_prompts(args.file, args.field)
    if prompts.bad:
        if args.strict:
            first = prompts.bad[0]
            raise InputError(f"malformed record: {first.describe(prompts.path)}",
                             f"{len(prompts.bad)} in all; fix them, or leave out --strict to skip them")
        for bad in prompts.bad:
            _print(f"wsd: skipped {bad.describe(prompts.path)}", file=sys.stderr)
    if args.limit is not None and args.limit < 1:
        raise InputError("--limit must be at least 1")
    if not 1 <= args.concurrency <= MAX_CONCURRENCY:
        raise InputError(f"--concurrency must be in [1, {MAX_CONCURRENCY}], got {args.concurrency}")
    items = prompts.items[: args.limit]
    contents = read_run(args.output)
    _warn_bad_lines(contents)
    given = given_settings(args)
    choice = choose_run(contents, given, modes, {"drafter": args.drafter, "base": args.base},
                        args.decoding_defaults, args.force)
    plan = plan_run(items, choice.modes, choice.fp, choice.settings, contents, args.force)
    if plan.answers_left == 0:
        _print(f"wsd eval: nothing to do: all {plan.done} answers are in {args.output}", file=sys.stderr)
        code = 0
    else:
        code = _answer(args, prompts, choice, plan)
    if code == 0 and args.format != "jsonl":
        _export(args.output, args.format, args.output.parent, args.generator, choice.fp)
    return code


def _answer(args: argparse.Namespace, prompts: Any, choice: Any, plan: Any) -> int:
    from ..engine import Engine
    from ..engine_pool import answer_slots
    from ..eval.progress import make_progress
    from ..eval.records import header_record
    from ..eval.runfile import RunWriter
    from ..eval.execute import run_plan

    runtime = runtime_from_args(args)
    roles = sorted({role for mode in plan.modes for role in mode_named(mode).models})
    cancel = threading.Event()
    progress = make_progress()
    with RunWriter(args.output) as writer:  # locked: one writer per run file
        if writer.dropped_tail:
            progress.note(f"wsd eval: cut off an unfinished last line ({writer.dropped_tail} bytes) "
                          "left by an interrupted run; that answer is written again")
        engine = Engine.load(choice.models["drafter"]["path"], choice.models["base"]["path"],
                             runtime, roles=roles, remote=remote_from_args(args))
        concurrency = answer_slots(engine, args.concurrency)
        try:
            if args.concurrency > 1 and concurrency == 1:
                progress.note("wsd eval: a local model answers one prompt at a time; "
                              "--concurrency applies when the models are on servers")
            for warning in engine.warnings:
                progress.note(f"wsd: warning: {warning}")
            if choice.new_header:
                writer.append(header_record(
                    choice.fp, choice.settings, choice.models, choice.header_modes, prompts.path,
                    prompts.sha256, {**runtime.to_dict(), "backend": engine.backend_name}))
            with ctrl_c_stops(cancel):
                summary = run_plan(engine, plan, writer, progress, cancel, args.traces_dir, concurrency)
        finally:
            engine.close()
    total = plan.done + summary.written
    _print(f"wsd eval: wrote {summary.written} answers to {args.output} ({total} in the file for "
          f"this run)", file=sys.stderr)
    if summary.cancelled:
        _print("wsd eval: stopped; the finished answers are saved: run the same command to resume",
              file=sys.stderr)
        return 130
    if summary.failed:
        for line in summary.failed:
            _print(f"wsd eval: failed: {line}", file=sys.stderr)
        _print(f"wsd eval: {len(summary.failed)} answers failed (tried again on resume)", file=sys.stderr)
        return 1
    return 0


def _warn_bad_lines(contents: Any) -> None:
    if contents.bad_lines:
        lines = ", ".join(map(str, contents.bad_lines[:5]))
        _print(f"wsd: warning: {contents.path}: line(s) {lines} are not wsd eval records and are "
              "ignored", file=sys.stderr)


# -- report -------------------------------------------------------------------------------
def _register_report(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("report", help="statistics, tables and plots of a run",
                            description="Switch-fired rate, switch position, tokens by model and "
                                        "time per token, by mode and by category (Markdown on "
                                        "stdout); plots and an HTML page on request.")
    p.add_argument("run", type=Path, metavar="RUN", help="a run file written by `wsd eval`")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="write a self-contained HTML page (tables and plots; default: none)")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR",
                   help="write the plots as PNG and SVG to DIR (default with --html: FILE's "
                        "name + _plots)")
    p.add_argument("--json", action="store_true", help="print the statistics as JSON")
    p.set_defaults(func=report_command)


def report_command(args: argparse.Namespace) -> int:
    from ..eval.report import build_report, write_outputs

    contents = _read_existing(args.run)
    report = build_report(contents)
    print(terminal_safe_json(report.to_json()) if args.json else terminal_safe(report.markdown()))
    for path in write_outputs(report, args.html, args.plots):
        _print(f"wsd eval: wrote {path}", file=sys.stderr)
    return 0


def _read_existing(path: Path) -> Any:
    from ..eval.runfile import RunFileError, read_run

    if not path.is_file():
        raise RunFileError(f"run file not found: {path}", "make one with `wsd eval PROMPTS -o RUN`")
    contents = read_run(path)
    _warn_bad_lines(contents)
    if not contents.answers:
        raise RunFileError(f"{path} holds no answers yet", "run `wsd eval PROMPTS -o RUN` first")
    return contents


# -- sweep --------------------------------------------------------------------------------
def _register_sweep(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser(
        "sweep", help="where the switch falls for other γ and w (from stored paper answers)",
        description="For every (γ, w) the switch position and kept share, recomputed from the "
                    "base model's probabilities of the stored paper-mode drafts (no decoding). "
                    "Online wsd answers score the draft only up to their switch, so the sweep "
                    "needs paper rows: --add-paper makes them.")
    p.add_argument("run", type=Path, metavar="RUN", help="a run file written by `wsd eval`")
    p.add_argument("--threshold", default="0.5:0.95:0.05", metavar="A:B:STEP|LIST",
                   help="thresholds γ: a range (inclusive) or a comma list (default: %(default)s)")
    p.add_argument("--window", default="1,2,4,6,8,10,12", metavar="LIST",
                   help="windows w: a comma list or a range A:B (default: %(default)s)")
    p.add_argument("--add-paper", action="store_true",
                   help="first answer the run's prompts in paper mode (same settings, same file)")
    p.add_argument("--rerun", action="append", default=[], metavar="γ/w",
                   help="re-decode the continuations at these cells, e.g. 0.7/6,0.9/4 (repeatable; "
                        "default: none)")
    p.add_argument("--rerun-output", type=Path, default=None, metavar="FILE",
                   help="run file for the re-runs (default: RUN with .rerun.jsonl)")
    p.add_argument("--html", type=Path, default=None, metavar="FILE",
                   help="write an HTML page (default: none)")
    p.add_argument("--plots", type=Path, default=None, metavar="DIR",
                   help="write the heatmaps as PNG and SVG to DIR (default: none)")
    p.add_argument("--json", action="store_true", help="print the grid as JSON")
    add_model_options(p, remote=False)  # re-runs and --add-paper load local models
    p.set_defaults(func=sweep_command)


def sweep_command(args: argparse.Namespace) -> int:
    from ..eval import sweep

    thresholds = sweep.parse_thresholds(args.threshold)
    windows = sweep.parse_windows(args.window)
    cells = [cell for text in args.rerun for cell in sweep.parse_cells(text)]
    if args.add_paper:
        code = _add_paper(args)
        if code:
            return code
    contents = _read_existing(args.run)
    result = sweep.sweep_run(contents, thresholds, windows)
    print(terminal_safe_json(result.to_json()) if args.json else terminal_safe(result.markdown()))
    for path in sweep.write_outputs(result, args.html, args.plots):
        _print(f"wsd eval: wrote {path}", file=sys.stderr)
    if cells:
        output = args.rerun_output or args.run.with_name(args.run.name.removesuffix(".jsonl") + ".rerun.jsonl")
        return _rerun(args, contents, result, cells, output)
    return 0


def _rerun(args: argparse.Namespace, contents: Any, result: Any, cells: list, output: Path) -> int:
    from ..eval.report import table_markdown
    from ..eval.sweep import rerun_cells

    cancel = threading.Event()
    with ctrl_c_stops(cancel):
        summary = rerun_cells(contents, result, cells, output, runtime_from_args(args),
                              args.drafter, args.base, cancel)
    if summary.cancelled:
        _print("wsd eval: stopped; the finished re-runs are saved: run the same command to resume",
              file=sys.stderr)
        return 130
    if not summary.todo:
        _print(f"wsd eval: nothing to re-run: all answers are in {output}", file=sys.stderr)
    assert summary.table is not None
    _print("\n" + table_markdown(summary.table))
    return 0


def _add_paper(args: argparse.Namespace) -> int:
    """`wsd eval INPUT -o RUN --modes paper` with the run's own settings and models: the
    arguments of `run` built from this command's own (models, runtime, remote options,
    config already applied), every other option at run's default."""
    contents = _read_existing(args.run)
    header = contents.headers[contents.latest] if contents.latest else None
    if header is None:
        from ..eval.runfile import RunFileError
        raise RunFileError(f"{args.run} has no run header to take the prompt file from")
    config = getattr(args, "user_config", None)  # set by apply_config
    defaults = merged_defaults(EVAL_DEFAULTS, config.section("decoding")) if config else EVAL_DEFAULTS
    run_args = argparse.Namespace(
        file=header["input"]["path"], output=args.run, modes=PAPER_MODE.name, field=None, limit=None,
        strict=False, force=False, traces_dir=None, format="jsonl", generator=None,
        drafter=args.drafter, base=args.base, ctx=args.ctx, threads=args.threads,
        n_gpu_layers=args.n_gpu_layers, base_api_key=getattr(args, "base_api_key", None),
        remote_timeout=getattr(args, "remote_timeout", None), concurrency=1,
        decoding_defaults=defaults)
    return run_command(run_args)


# -- export -------------------------------------------------------------------------------
def _register_export(commands: argparse._SubParsersAction) -> None:
    p = commands.add_parser("export", help="answers in AlpacaEval or MT-Bench format",
                            description="One file per mode: alpaca_eval writes a JSON list of "
                                        "{instruction, output, generator}; mt_bench writes "
                                        "FastChat's model-answer JSONL.")
    p.add_argument("run", type=Path, metavar="RUN", help="a run file written by `wsd eval`")
    p.add_argument("--format", choices=EXPORT_FORMATS, default=EXPORT_FORMATS[0],
                   help="the evaluation tool's format (default: %(default)s)")
    p.add_argument("-o", "--output-dir", type=Path, default=None, metavar="DIR",
                   help="folder for the files (default: next to RUN)")
    p.add_argument("--run-id", default=None, metavar="ID",
                   help="which run of the file, by fingerprint (default: the latest)")
    p.add_argument("--generator", default=None, metavar="NAME",
                   help="generator / model_id prefix (default: mode and model names)")
    p.set_defaults(func=export_command)


def export_command(args: argparse.Namespace) -> int:
    _export(args.run, args.format, args.output_dir or args.run.parent, args.generator, args.run_id)
    return 0


def _export(run: Path, fmt: str, folder: Path, generator: str | None, run_id: str | None) -> None:
    from ..eval.export import export_run
    from ..eval.runfile import RunFileError

    contents = _read_existing(run)
    run_id = run_id or contents.latest or contents.runs[-1]  # a re-run file has no `run` header
    if run_id not in contents.headers:
        raise RunFileError(f"no run {run_id!r} in {run}", "runs: " + ", ".join(contents.runs))
    for path, count, left_out in export_run(contents, run_id, fmt, folder, generator):
        note = f" ({left_out} multi-turn prompts left out)" if left_out else ""
        _print(f"wsd eval: wrote {path}: {count} answers{note}", file=sys.stderr)
