"""`wsd models ...`: list, info, pull, add, remove, convert, check.

Tables and reports go to stdout; progress and status lines to stderr, so
`wsd models list --json | jq` stays clean.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import ModelError
from ..terminal_text import terminal_safe


def _say(text: str) -> None:
    print(f"wsd: {terminal_safe(text)}", file=sys.stderr, flush=True)


def _out(text: str = "") -> None:
    """Tables and reports: names, paths and metadata come from model files and servers."""
    print(terminal_safe(text))


def register(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("models", help="list, inspect, download and convert models",
                            description="Model management: the catalog, downloads, GGUF inspection and "
                                        "safetensors-to-GGUF conversion (for Pilot-3B).")
    parser.set_defaults(func=lambda args: parser.print_help() or 2)
    cmds = parser.add_subparsers(dest="models_command", metavar="ACTION")

    p = cmds.add_parser("list", help="installed and available models, and GGUFs in the Hugging Face cache, "
                                     "Ollama, LM Studio and llama.cpp's cache")
    p.add_argument("--json", action="store_true", help="print JSON (default: a table)")
    p.add_argument("--names", action="store_true",
                   help="only the names --drafter and --base accept, one per line (for scripts and "
                        "shell completion; reads no model file)")
    p.set_defaults(func=cmd_list)

    p = cmds.add_parser("info", help="GGUF metadata of a model (no model load), or what a model server serves")
    p.add_argument("model", metavar="NAME|PATH|URL",
                   help="a model name (`wsd models list`), a .gguf file or a server URL[#MODEL]")
    p.add_argument("--api-key", metavar="KEY", default=None, help="the server's API key (default: $WSD_API_KEY)")
    p.add_argument("--verify", action="store_true",
                   help="for a model in Ollama's store: also compare the blob's sha256 with its digest "
                        "(reads the whole file; default: size and header checks only)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_info)

    p = cmds.add_parser("pull", help="get a catalog model, OWNER/REPO:QUANT or hf:REPO/FILE.gguf",
                        description="A GGUF already in the Hugging Face cache (HF_HOME, HF_HUB_CACHE) is "
                                    "used where it is, without a download or a copy. Otherwise it is "
                                    "downloaded into the models folder (an interrupted download resumes; "
                                    "HF_HUB_OFFLINE and HF_TOKEN are honoured). A catalog model published "
                                    "as safetensors (pilot-3b) is converted.")
    p.add_argument("model", metavar="NAME|OWNER/REPO:QUANT|hf:REPO/FILE",
                   help="a catalog name, a Hugging Face repository with a quantization tag "
                        "(bartowski/Llama-3.2-3B-GGUF:Q4_K_M; no tag: Q4_K_M), or one file")
    p.add_argument("--name", help="register under this name (default: the catalog name or the file name)")
    p.add_argument("--role", choices=("drafter", "base"),
                   help="default: the catalog's, else drafter if the file has a chat template")
    p.add_argument("--revision", help="branch, tag or commit on the Hub (default: main)")
    p.add_argument("--quant", help="the quantization: which file of OWNER/REPO to take, or the type a "
                                   "converted model is written in (default: Q4_K_M)")
    p.set_defaults(func=cmd_pull)

    p = cmds.add_parser("add", help="register a local GGUF file, or a model on a server (URL[#MODEL])")
    p.add_argument("path", metavar="PATH|URL", help="the .gguf file (it stays where it is) or a server URL[#MODEL]")
    p.add_argument("--api-key", metavar="KEY", default=None,
                   help="for a server: its API key, to check it now (never saved; default: $WSD_API_KEY)")
    p.add_argument("--name", required=True, help="the name --drafter and --base will take")
    p.add_argument("--role", required=True, choices=("drafter", "base"),
                   help="drafter (aligned, with a chat template) or base (pretrained)")
    p.set_defaults(func=cmd_add)

    p = cmds.add_parser("remove", help="unregister a model (the file stays unless --delete)")
    p.add_argument("name", metavar="NAME", help="a registered model name")
    p.add_argument("--delete", action="store_true", help="also delete the file if it is in the models folder")
    p.set_defaults(func=cmd_remove)

    p = cmds.add_parser("convert", help="convert a Llama safetensors checkpoint to GGUF (e.g. songff/Pilot-3B)",
                        description="Download (or read from a local folder) a LlamaForCausalLM checkpoint in "
                                    "Hugging Face layout, write a GGUF with the gguf package, quantize it with "
                                    "llama.cpp and register it.")
    p.add_argument("source", metavar="REPO|FOLDER",
                   help="a Hugging Face repository id (songff/Pilot-3B) or a local checkpoint folder")
    p.add_argument("--quant", default="Q4_K_M", type=str.upper,
                   help="target type: Q4_K_M (default), Q5_K_M, Q6_K, Q8_0, Q4_0, BF16, F16, F32, ...")
    p.add_argument("--name", help="register under this name (default: pilot-3b for songff/Pilot-3B, else the folder name)")
    p.add_argument("--role", default="drafter", choices=("drafter", "base"),
                   help="the role it is registered with (default: %(default)s)")
    p.add_argument("--outfile", type=Path, help="where to write the GGUF (default: the models folder)")
    p.add_argument("--revision", help="branch, tag or commit on the Hub (default: main)")
    p.add_argument("--threads", type=int, help="quantization threads (default: all cores)")
    p.set_defaults(func=cmd_convert)

    p = cmds.add_parser("check", help="pair check: shared tokenizer? chat templates where expected?")
    p.add_argument("--drafter", metavar="NAME|PATH", default=None,
                   help="default: models.drafter in config.toml, else the demo drafter")
    p.add_argument("--base", metavar="NAME|PATH|URL", default=None,
                   help="default: models.base in config.toml, else the demo base model")
    p.add_argument("--api-key", metavar="KEY", default=None, help="for a base on a server (default: $WSD_API_KEY)")
    p.add_argument("--json", action="store_true", help="print JSON")
    p.set_defaults(func=cmd_check, config_applies=True)


# -- list -------------------------------------------------------------------------------

def cmd_list(args: argparse.Namespace) -> int:
    from ..gguf_format.reader import format_bytes
    from ..models.listing import list_models
    from ..paths import models_dir

    if args.names:
        from ..models.resolve import known_names

        _out("\n".join(known_names()))
        return 0
    rows = list_models()
    if args.json:
        _out(json.dumps([r.as_dict() for r in rows], indent=2))
        return 0
    table = [("NAME", "ROLE", "STATUS", "SOURCE", "SIZE", "ARCH", "QUANT", "CTX", "WHERE")]
    for r in rows:
        cells = (r.name, r.role, r.status, r.source or "-", format_bytes(r.size_bytes), r.architecture or "-",
                 r.quantization or "-", str(r.context_length) if r.context_length else "-", r.where)
        table.append(tuple(terminal_safe(cell, one_line=True) for cell in cells))  # widths of what is shown
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]) - 1)]
    for row in table:
        _out("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1])
    problems = [r for r in rows if r.status in ("broken", "missing")]
    if problems:
        _out()
        for r in problems:  # why a file cannot be used, one line each
            _out(terminal_safe(f"{r.name}: {r.notes}", one_line=True))
    _out(f"\nmodels folder: {models_dir()}  (get one with `wsd models pull NAME`)")
    return 0


# -- info -------------------------------------------------------------------------------

def _remote(spec: str, api_key: str | None, role: str = "base"):
    """The server behind `spec` (URL or registered name), connected and checked for
    `role`; None for a file or a local model name."""
    from ..backend.remote import RemoteBackend
    from ..backend.remote_spec import RemoteOptions
    from ..models.resolve import remote_spec_for

    url = remote_spec_for(spec, role)
    return None if url is None else RemoteBackend(url, role, RemoteOptions.from_env(api_key))


def _remote_info(backend) -> dict:
    model = backend.model
    return {"name": model.name, "url": backend.spec.api_url, "engine": model.engine,
            "served": list(model.served), "context_length": backend.n_ctx,
            "tokenizer": backend.style, "prompt_logprobs": backend.role == "base"}


def cmd_info(args: argparse.Namespace) -> int:
    from ..gguf_format.reader import format_bytes, format_count, read_gguf

    remote = _remote(args.model, args.api_key)
    if remote is not None:
        info = _remote_info(remote)
        remote.close()
        if args.json:
            _out(json.dumps(info, indent=2))
            return 0
        _out_fields(info["name"], [("server", f"{info['url']} ({info['engine']})"),
                                   ("serves", ", ".join(info["served"])),
                                   ("context length", str(info["context_length"])),
                                   ("tokenizer", info["tokenizer"]),
                                   ("prompt logprobs", "yes: it can be the base model")])
        return 0
    from ..models.resolve import resolve_model

    resolved = resolve_model(args.model, "base")
    name, path, store = resolved.name, resolved.path, resolved.store
    if args.verify:
        _verify_digest(store)
    info = read_gguf(path, arrays={"tokenizer.ggml.tokens"})
    if args.json:
        origin = {"source": store.source, "store": str(store.store), "store_notes": store.notes} if store else {}
        _out(json.dumps({"name": name, **info.summary(), **origin,
                          "chat_template": info.chat_template}, indent=2))
        return 0
    template = info.chat_template
    template_line = (f"yes ({len(template)} characters): fits a drafter; a base model should have none"
                     if template else "none: fits a base model; a drafter needs one")
    special = ", ".join(f"{k} {v}" for k, v in info.special_tokens().items()) or "-"
    lines = [
        ("file", f"{path}"),
        ("size", format_bytes(info.file_size)),
        ("architecture", info.architecture + (f"  ({info.name})" if info.name else "")),
        ("parameters", f"{format_count(info.parameter_count)} ({info.parameter_count:,})"),
        ("quantization", info.quantization),
        ("context length", str(info.context_length or "-")),
        ("layers", f"{info.block_count or '-'} (embedding {info.embedding_length or '-'})"),
        ("vocabulary", f"{info.vocab_size or '-'} tokens"),
        ("tokenizer", f"{info.tokenizer_model or '-'} (pre-tokenizer {info.tokenizer_pre or 'default'})"),
        ("special tokens", special),
        ("chat template", template_line),
        ("tensors", f"{len(info.tensors)} (GGUF v{info.version})"),
    ]
    if store is not None:
        where = f"{store.label} store {store.store}" + (f"; {store.notes}" if store.notes else "")
        lines.insert(1, ("source", where))
    _out_fields(name, lines)
    return 0


def _out_fields(title: str, fields: list[tuple[str, str]]) -> None:
    """A title line, then one indented `key  value` line per field."""
    _out(title)
    for key, value in fields:
        _out(f"  {key:<15} {terminal_safe(value, one_line=True)}")


def _verify_digest(store) -> None:
    """The whole blob hashed and compared with the digest Ollama names it by."""
    if store is None or store.digest is None:
        raise ModelError("--verify checks a model in Ollama's store against its digest",
                         "give an ollama:NAME model; other files have no digest to compare")
    from ..models.checksum import sha256_file

    _say(f"hashing {store.path} ...")
    actual = sha256_file(store.path)
    if actual != store.digest:
        raise ModelError(f"{store.spec} (in the {store.label} store {store.store}): {store.path} does not match "
                         f"its sha256 digest: a corrupt file", store.refetch or None)
    _say(f"sha256 matches the digest ({store.digest[:12]}...)")


# -- pull / add / remove ------------------------------------------------------------------

def cmd_pull(args: argparse.Namespace) -> int:
    from ..models.pull import pull

    entry = pull(args.model, name=args.name, role=args.role, revision=args.revision, quant=args.quant, say=_say)
    _out(f"{entry.name}: {entry.role}, {entry.path}")
    return 0


def cmd_add(args: argparse.Namespace) -> int:
    from ..models import catalog, registry
    from ..models.demo import DEMO_BASE, DEMO_DRAFTER
    from ..gguf_format.reader import read_gguf

    name = registry.check_name(args.name)
    if name in (DEMO_DRAFTER, DEMO_BASE):
        raise ModelError(f"{name} is the name of a demo model", "choose another --name")
    from ..backend.remote_spec import is_remote_spec

    if is_remote_spec(args.path):
        # Checks it answers and can do the role's work: score (base), or apply a chat
        # template and stream log-probabilities (drafter).
        remote = _remote(args.path, args.api_key, args.role)
        info = _remote_info(remote)
        remote.close()
        url = f"{info['url']}#{info['name']}"
        reg = registry.register(name, url, args.role, "remote")
        _out(f"{reg.name}: {args.role}, {info['engine']} at {info['url']}, model {info['name']}, "
              f"context {info['context_length']}")
        return 0
    entry = catalog.get(name)
    path = Path(args.path).expanduser()
    info = read_gguf(path)  # a folder, a text file or a truncated file stops here
    if entry is not None and entry.role != args.role:
        raise ModelError(f"{name} is a {entry.role} in the catalog", "choose another --name")
    reg = registry.register(name, path, args.role, "local")
    _out(f"{reg.name}: {reg.role}, {info.architecture} {info.quantization}, {reg.path}")
    if args.role == "base" and info.chat_template is not None:
        _say(f"warning: {path.name} has a chat template; WSD expects a pretrained base model without one")
    if args.role == "drafter" and info.chat_template is None:
        _say(f"warning: {path.name} has no chat template; a drafter needs one to be prompted as a chat model")
    return 0


def cmd_remove(args: argparse.Namespace) -> int:
    from ..models import registry
    from ..paths import models_dir

    entry = registry.unregister(args.name)
    _out(f"unregistered {entry.name} ({entry.path})")
    if args.delete:
        file = entry.file.resolve()
        folder = models_dir().resolve()
        if folder in file.parents and file.is_file():
            file.unlink()
            _out(f"deleted {file}")
        else:
            _say(f"kept {file}: only files inside the models folder ({folder}) are deleted")
    return 0


# -- convert ------------------------------------------------------------------------------

def cmd_convert(args: argparse.Namespace) -> int:
    from ..models.convert import convert
    from ..gguf_format.reader import format_bytes, format_count

    result = convert(args.source, quant=args.quant, name=args.name, role=args.role, outfile=args.outfile,
                     revision=args.revision, threads=args.threads, say=_say, progress=sys.stderr.isatty())
    info = result.info
    _out(f"{result.registered.name}: {info.architecture}, {format_count(info.parameter_count)} parameters, "
          f"{info.quantization}, {format_bytes(info.file_size)}, {result.path} ({result.seconds:.1f} s)")
    return 0


# -- check --------------------------------------------------------------------------------

def cmd_check(args: argparse.Namespace) -> int:
    from ..models.pair import check_pair
    from ..models.resolve import resolve_model

    drafter = resolve_model(args.drafter, "drafter")
    remote = _remote(args.base, args.api_key) if args.base else None
    if remote is not None:
        return _check_remote_pair(drafter, remote, args.json)
    base = resolve_model(args.base, "base")
    report = check_pair(drafter.path, base.path)
    if args.json:
        _out(json.dumps({"drafter_name": drafter.name, "base_name": base.name, **report.as_dict()}, indent=2))
        return 0
    _out(f"drafter  {drafter.name}: {report.drafter_tokenizer}, {report.drafter_vocab} tokens, "
          f"chat template {'yes' if report.drafter_has_chat_template else 'no'}")
    _out(f"base     {base.name}: {report.base_tokenizer}, {report.base_vocab} tokens, "
          f"chat template {'yes' if report.base_has_chat_template else 'no'}")
    if report.shared_tokenizer:
        _out(f"shared tokenizer: yes ({report.reason}); draft token ids go to the base model as they are")
    else:
        _out(f"shared tokenizer: no ({report.reason}); the draft text is re-tokenized for the base model")
    for warning in report.warnings:
        _out(f"warning: {warning}")
    return 0


def _check_remote_pair(drafter, remote, as_json: bool) -> int:
    """Pair check with the base model on a server: the vocabulary probe of
    backend/remote_twin.py against the drafter (loaded here to read its vocabulary)."""
    from ..backend.llama import LlamaBackend
    from ..settings import RuntimeSettings

    local = LlamaBackend(drafter.path, "drafter", RuntimeSettings(n_ctx=256, n_gpu_layers=0), name=drafter.name)
    try:
        shared = remote.adopt_vocabulary(local)
        info = _remote_info(remote)
    finally:
        remote.close()
        local.close()
    if as_json:
        _out(json.dumps({"drafter_name": drafter.name, "base": info, "shared_tokenizer": shared}, indent=2))
        return 0
    _out(f"drafter  {drafter.name}: {local.n_vocab} tokens")
    _out(f"base     {info['name']} at {info['url']} ({info['engine']}, {info['tokenizer']} tokenizer)")
    if shared:
        _out("shared tokenizer: yes (every probed id means the same text on the server); "
              "draft token ids go to the base model as they are")
    else:
        _out("shared tokenizer: no; the draft text is re-tokenized by the server")
    return 0
