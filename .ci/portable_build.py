"""Check that .venv-portable's llama.cpp is the generic build `make test-portable` asks for.

Prints llama.cpp's system info and exits 1 with one line when the library was built with
AVX2 (or AVX, FMA, F16C, AVX-512: pip may have handed back a native wheel) or when its
llama-cpp-python version differs from the main environment's. On other architectures
it prints what the build uses and checks only the version.

    .venv-portable/bin/python .ci/portable_build.py --same-version-as .venv/bin/python
"""

from __future__ import annotations

import argparse
import platform
import re
import subprocess
import sys
from importlib.metadata import version

#: Features llama.cpp reports as "NAME = 1" when it was compiled with them (x86-64).
NATIVE_ONLY = ("AVX", "AVX2", "AVX_VNNI", "FMA", "F16C", "AVX512")


def compiled_features(info: str) -> set[str]:
    return {name for name, on in re.findall(r"(\w+) = (\d)", info) if on == "1"}


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--same-version-as", metavar="PYTHON",
                        help="the interpreter whose llama-cpp-python version this one must have")
    args = parser.parse_args(argv)

    import llama_cpp

    info = llama_cpp.llama_print_system_info().decode(errors="replace").strip()
    ours = version("llama-cpp-python")
    print(f"portable llama-cpp-python {ours} on {platform.machine()}: {info}")
    if args.same_version_as:
        theirs = subprocess.run(
            [args.same_version_as, "-c",
             "from importlib.metadata import version; print(version('llama-cpp-python'))"],
            capture_output=True, text=True, check=True).stdout.strip()
        if theirs != ours:
            print(f"make test-portable: llama-cpp-python {ours} here but {theirs} in "
                  f"{args.same_version_as}; run `rm -rf .venv-portable` and try again", file=sys.stderr)
            return 1
    if platform.machine().lower() in ("x86_64", "amd64"):
        found = sorted(compiled_features(info) & set(NATIVE_ONLY))
        if found:
            print(f"make test-portable: the portable build has {', '.join(found)}: it is not llama.cpp's "
                  "generic x86-64 build; run `rm -rf .venv-portable` and try again", file=sys.stderr)
            return 1
        print("portable build: generic x86-64 kernels (no AVX, AVX2, FMA, F16C, AVX-512)")
    else:
        print(f"portable build: {platform.machine()} is not x86-64; llama.cpp built for its "
              "generic baseline (GGML_NATIVE=OFF)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
