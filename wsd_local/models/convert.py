"""`wsd models convert`: a Llama-family safetensors checkpoint (Hugging Face layout) ->
a checked, registered GGUF. It exists because the paper's drafter, Pilot-3B, is
published as safetensors only.

The stages live in their own modules (`download`, `hf_llama`, `hf_tokenizer`,
`gguf_writer`); this one runs them and owns the files. config.json and the tokenizer
are read first, so an unsupported model fails before anything heavy. Every intermediate
file is a hidden `.partial` file removed on any failure, so nothing half-written is
ever registered or listed.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from ..errors import ModelError
from ..paths import log_path, models_dir
from . import catalog, registry
from .download import checkpoint_dir, download_checkpoint, is_offline, is_repo_id
from ..gguf_format.filetypes import CONVERT_TARGETS, FLOAT_TYPES
from .gguf_writer import quantize, write_gguf
from .hf_llama import load_config, plan_tensors
from .hf_tokenizer import load_vocab
from ..gguf_format.reader import GGUFInfo, read_gguf
from .safetensors_reader import SafetensorsIndex

Say = Callable[[str], None]

@dataclass
class ConvertResult:
    path: Path
    registered: registry.RegisteredModel
    info: GGUFInfo
    seconds: float


def resolve_source(source: str, revision: str | None, say: Say) -> tuple[Path, str | None]:
    """A local checkpoint folder, or a repository id downloaded (or found cached)."""
    path = Path(source).expanduser()
    if path.exists():
        if not path.is_dir():
            raise ModelError(f"{source} is a file; give the checkpoint folder (with config.json and *.safetensors)",
                             "a .gguf file needs no conversion: `wsd models add PATH`")
        return path, None
    if is_repo_id(source):
        say(f"offline: looking for the checkpoint of {source} in {checkpoint_dir(source)} or the Hugging Face cache"
            if is_offline() else
            f"fetching the safetensors checkpoint of {source} (resumable; kept in {checkpoint_dir(source)})")
        return download_checkpoint(source, revision, say), source
    raise ModelError(f"{source!r} is neither a folder nor a Hugging Face repository id",
                     "give a local checkpoint folder or OWNER/REPO, e.g. songff/Pilot-3B")


def default_name(source: str, folder: Path, repo: str | None) -> str:
    entry = catalog.by_repo(repo) if repo else None
    if entry is not None:
        return entry.name
    return registry.slug(repo.split("/")[-1] if repo else folder.name)


def _check_disk(folder: Path, dest: Path, quant: str) -> None:
    weights = sum(p.stat().st_size for p in folder.glob("*.safetensors"))
    # Intermediate (bf16-sized) plus the result, with 5 % slack.
    need = int(weights * (1.0 + (CONVERT_TARGETS[quant] if quant not in FLOAT_TYPES else 0.0)) * 1.05)
    free = shutil.disk_usage(dest).free
    if free < need:
        raise ModelError(f"not enough free disk space in {dest}: {free / 1e9:.1f} GB free, about {need / 1e9:.1f} GB needed",
                         "free some space or set WSD_MODELS_DIR to another disk")


def convert(source: str, quant: str = "Q4_K_M", name: str | None = None, role: str = "drafter",
            outfile: Path | None = None, revision: str | None = None, threads: int | None = None,
            say: Say = lambda s: None, progress: bool = False) -> ConvertResult:
    """Convert a Llama-family safetensors checkpoint (folder or repo id) to a GGUF of
    type `quant`, check it, and register it under `name`."""
    started = time.monotonic()
    quant = quant.upper()
    if quant not in CONVERT_TARGETS:
        raise ModelError(f"unknown quantization type {quant!r}", f"choose one of {', '.join(CONVERT_TARGETS)}")
    registry.check_role(role)
    if name is not None:
        name = registry.check_name(name)
    folder, repo = resolve_source(source, revision, say)
    cfg = load_config(folder)  # fail fast on the architecture and tokenizer before anything heavy
    with SafetensorsIndex(folder) as st:  # headers only
        source_dtype = st.weight_dtype()
        # Every tensor's shape against config.json's (reads no data): the tokenizer is
        # laid out to vocab_size only once the embedding is known to have that many rows.
        plan_tensors(cfg, st, source_dtype)
    vocab = load_vocab(folder, cfg.vocab_size)
    name = name or default_name(source, folder, repo)
    basename = (repo.split("/")[-1] if repo else folder.resolve().name) or "model"
    dest = Path(outfile).expanduser() if outfile else models_dir() / f"{basename}-{quant}.gguf"
    if dest.suffix.lower() != ".gguf":
        raise ModelError(f"{dest} must end in .gguf", "choose another --outfile")
    dest.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_partials(dest.parent)
    _check_disk(folder, dest.parent, quant)

    # Lossless intermediate: the checkpoint's own float type, unless the target is a
    # float type we can write directly.
    direct = quant in ("F32", "F16") or (quant == "BF16" and source_dtype == "BF16")
    weight_type = quant if direct else source_dtype
    tag = f".{dest.name}.partial-{os.getpid()}"
    first = dest.with_name(tag + ("" if direct else f".{weight_type}"))
    second = dest.with_name(tag)
    url = f"https://huggingface.co/{repo}" if repo else None
    try:
        say(f"writing {weight_type} GGUF from {folder}")
        write_gguf(folder, first, weight_type, name=basename, source_url=url, progress=progress, vocab=vocab)
        if not direct:
            say(f"quantizing to {quant} with llama.cpp (minutes for a 3B model on a laptop CPU)")
            with _ticker(f"quantizing to {quant}", progress):
                quantize(first, second, quant, threads)
            first.unlink()
        info = read_gguf(second)
        if info.architecture != "llama" or info.quantization != quant:
            raise ModelError(f"the converted file reads back as {info.architecture}/{info.quantization}, "
                             f"expected llama/{quant}", f"see {log_path()}")
        os.replace(second, dest)
    finally:
        for leftover in (first, second):
            leftover.unlink(missing_ok=True)
    info = read_gguf(dest)
    entry = registry.register(name, dest, role, f"convert:{repo}" if repo else f"convert:{folder.resolve()}")
    return ConvertResult(path=dest, registered=entry, info=info, seconds=time.monotonic() - started)


def remove_stale_partials(folder: Path) -> list[Path]:
    """Delete `.NAME.partial-PID*` files left by a conversion that was killed (its
    process is gone); a running conversion's files are left alone."""
    removed = []
    for path in folder.glob(".*.partial-*"):
        match = re.search(r"\.partial-(\d+)", path.name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid() or os.name == "nt":  # on Windows, signal 0 would interrupt the process
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # exists but not ours, or not checkable here
        return True
    return True


@contextlib.contextmanager
def _ticker(label: str, enabled: bool) -> Iterator[None]:
    """Elapsed seconds on stderr while a long C call runs (ctypes releases the GIL)."""
    if not enabled:
        yield
        return
    stop = threading.Event()
    started = time.monotonic()

    def tick() -> None:
        while not stop.wait(1.0):
            sys.stderr.write(f"\r{label}: {time.monotonic() - started:.0f} s")
            sys.stderr.flush()

    thread = threading.Thread(target=tick, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()
        sys.stderr.write("\r" + " " * (len(label) + 16) + "\r")
        sys.stderr.flush()
