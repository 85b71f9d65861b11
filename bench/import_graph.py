"""The shape of `lab/` as figures: modules and lines, import cycles, imports that run up the layers, and untyped
signatures. Read from the source with `ast` (nothing is imported), so it runs on any commit's tree.

    python bench/import_graph.py [--root DIR] [--list]

The agents' scaffold templates (lab/scaffold/template*, lab/scaffold/common) are methods' code, not the lab's, and
are left out. An import inside a function counts like one at the top: it hides a dependency, it does not remove it.
An import under `if TYPE_CHECKING:` does not count: only the type checker makes it.
`--list` prints the cycles, the upward imports and the untyped signatures themselves.
"""
from __future__ import annotations

import argparse
import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
NOT_THE_LABS = ("lab/scaffold/template", "lab/scaffold/common")

# The layers, lowest first: a module may import from its own layer and those below. A module's layer is that of the
# longest prefix listed; a package's modules are in its layer unless one is listed on its own.
LAYERS = [
    ["lab.errors", "lab.inert", "lab.untrusted", "lab.threads", "lab.proctitle", "lab.logfiles", "lab.suggest",
     "lab.toml_lines", "lab.machine", "lab.disk_full", "lab.heartbeat"],
    ["lab.config", "lab.config_cache", "lab.config_derived", "lab.config_reference", "lab.settings", "lab.state_layout"],
    ["lab.store", "lab.score_text"],
    ["lab.scaffold"],
    ["lab.sandbox"],
    ["lab.task"],
    ["lab.scorer"],
    ["lab.prepare"],
    ["lab.agents"],
    ["lab.report"],
    ["lab.tui"],
    ["lab.cli", "lab.__main__"],
]


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def lab_modules(root: Path) -> dict[str, Path]:
    found = {}
    for path in sorted((root / "lab").rglob("*.py")):
        relative = path.relative_to(root).as_posix()
        if not relative.startswith(NOT_THE_LABS):
            found[module_name(path, root)] = path
    return found


def imports_of(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The lab modules this one imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            targets = [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in modules:     # `from lab.x import name`: the module is lab.x
                target = target.rpartition(".")[0]
            if target and target != name:
                found.add(target)
    return found


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:`, which only the type checker imports."""
    stack = [tree]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                stack.extend(child.orelse)
            else:
                stack.append(child)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or \
        (isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def layer_of(name: str) -> int:
    if name == "lab":
        return 0        # the package's own __init__: its version
    best, layer = -1, len(LAYERS)
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (name == prefix or name.startswith(prefix + ".")) and len(prefix) > best:
                best, layer = len(prefix), index
    return layer


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm)."""
    index, low, on_stack, stack, found = {}, {}, set(), [], []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for other in sorted(graph.get(node, ())):
            if other not in index:
                visit(other)
                low[node] = min(low[node], low[other])
            elif other in on_stack:
                low[node] = min(low[node], index[other])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def untyped_signatures(path: Path) -> list[tuple[int, str, list[str]]]:
    """(line, function, its unannotated parameters and 'return' where the return is unannotated), per function with
    any; `self` and `cls` need none, nor does `__init__`'s return."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        args = node.args
        params = args.posonlyargs + args.args + args.kwonlyargs + [a for a in (args.vararg, args.kwarg) if a]
        missing = [a.arg for a in params if a.annotation is None and a.arg not in ("self", "cls")]
        if node.returns is None and node.name != "__init__":
            missing.append("return")
        if missing:
            found.append((node.lineno, node.name, missing))
    return found


def figures(root: Path) -> dict:
    modules = lab_modules(root)
    graph = {name: imports_of(name, path, modules) for name, path in modules.items()}
    upward = sorted((a, b) for a, targets in graph.items() for b in targets if layer_of(b) > layer_of(a))
    untyped = {name: untyped_signatures(path) for name, path in modules.items()}
    untyped_named = lambda arg: sum(arg in missing for found in untyped.values() for _, _, missing in found)  # noqa: E731
    return {"modules": len(modules), "lines": sum(len(p.read_text().splitlines()) for p in modules.values()),
            "cycles": cycles(graph), "upward": upward,
            "untyped": untyped, "untyped_count": sum(len(v) for v in untyped.values()),
            "functions": sum(isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                             for p in modules.values() for n in ast.walk(ast.parse(p.read_text()))),
            "untyped_cfg": untyped_named("cfg"), "untyped_db": untyped_named("db")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=ROOT, help="a checkout of the lab (default: this one)")
    parser.add_argument("--list", action="store_true", help="print each cycle, upward import and untyped signature")
    args = parser.parse_args()
    f = figures(args.root.resolve())
    in_cycles = sum(len(c) for c in f["cycles"])
    print(f"modules in lab/:           {f['modules']} ({f['lines']} lines)")
    print(f"import cycles:             {len(f['cycles'])} ({in_cycles} modules in them)")
    print(f"imports up the layers:     {len(f['upward'])}")
    print(f"untyped signatures:        {f['untyped_count']} of {f['functions']} functions "
          f"(cfg untyped in {f['untyped_cfg']}, db in {f['untyped_db']})")
    if args.list:
        for cycle in f["cycles"]:
            print("cycle:", " <-> ".join(cycle))
        for a, b in f["upward"]:
            print(f"upward: {a} -> {b}")
        for name, found in sorted(f["untyped"].items()):
            for line, function, missing in found:
                print(f"untyped: {name}:{line} {function}({', '.join(missing)})")


if __name__ == "__main__":
    main()
