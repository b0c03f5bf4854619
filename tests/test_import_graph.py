"""No import circles in wsd_local, folders that build one way, and nothing from the
checkout's developer tools: every module's imports, read with ast (imports inside
functions count too; only `if TYPE_CHECKING:` blocks, which never run, are left out)."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "wsd_local"


def _module_names() -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is a package's __init__)."""
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _imported(name: str, path: Path, is_package: bool, modules: dict) -> set[str]:
    """The wsd_local modules that `name` imports (a name imported from a package counts
    as the submodule when there is one)."""
    out: set[str] = set()
    here = name.split(".") if is_package else name.split(".")[:-1]

    def visit(node: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                for other in child.orelse:
                    visit_one(other)
                continue
            visit_one(child)

    def visit_one(node: ast.AST) -> None:
        if isinstance(node, ast.Import):
            out.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            for alias in node.names:
                sub = f"{module}.{alias.name}"
                out.add(sub if sub in modules else module)
        visit(node)

    visit(ast.parse(path.read_text(encoding="utf-8")))
    return {m for m in out if m in modules and m != name}


def import_graph() -> dict[str, set[str]]:
    modules = _module_names()
    return {name: _imported(name, path, is_package, modules) for name, (path, is_package) in modules.items()}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def connect(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                connect(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                found.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            connect(v)
    return found


def test_the_graph_sees_imports_inside_functions_and_skips_type_checking_blocks() -> None:
    graph = import_graph()
    assert "wsd_local.rerun" in graph["wsd_local.engine"]  # imported inside Engine._rerun
    assert "wsd_local.eval.report" not in graph["wsd_local.eval.plots"]  # under TYPE_CHECKING


def test_circles_are_found() -> None:
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert circles(graph) == [["a", "b", "c"]]


def test_wsd_local_has_no_import_circles() -> None:
    assert circles(import_graph()) == []


# (importer, imported) folders of wsd_local: the GGUF format is below the backend and the
# model management, and the backend never reaches into model management.
ONE_WAY = {("backend", "models"), ("gguf_format", "models"), ("gguf_format", "backend")}


def _folder(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_folders_build_one_way() -> None:
    crossing = sorted((name, other) for name, imported in import_graph().items() for other in imported
                      if (_folder(name), _folder(other)) in ONE_WAY)
    assert crossing == []


def test_the_package_imports_no_developer_tool_or_test() -> None:
    found = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [a.name for a in node.names] if isinstance(node, ast.Import) else \
                [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else []
            found += [(path.name, n) for n in names if n.split(".")[0] in ("devtools", "tests")]
    assert found == []
