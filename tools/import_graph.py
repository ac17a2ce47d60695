"""Print the imports between the platform's apps, and the circles between its files.

    python tools/import_graph.py [--files]

Parses every ``.py`` file of the apps with ``ast`` (migrations excluded), resolves relative
imports and counts each import statement whose target is in another app. "inside functions"
means the statement is in a function body (run when called); "top level" means at module level
or in a class body. docs/architecture.md quotes this output; run it again after moving code.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("marketplace", "catalog", "billing", "gateway", "monitoring", "execution", "data")
# Apps nested in the project package; everything else in it is the project itself.
PROJECT_APPS = ("marketplace.core", "marketplace.accounts", "marketplace.audit", "marketplace.cli")
# Where three apps lived before they moved to the top level, so that the tool, copied into a
# checkout from before the move, counts those apps as apps (docs/architecture.md's "before").
PROJECT_APPS_MOVED = ("marketplace.gateway", "marketplace.monitoring", "marketplace.execution")


def app_of(module: str) -> str | None:
    for app in PROJECT_APPS + PROJECT_APPS_MOVED:
        if module == app or module.startswith(app + "."):
            return app
    for service in ("marketplace.embedded", "marketplace.var_dir"):
        if module == service:
            return service
    top = module.split(".", 1)[0]
    if top == "marketplace":
        return "marketplace (project)"
    return top if top in PACKAGES else None


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def source_files():
    for package in PACKAGES:
        base = ROOT / package
        if not base.is_dir():
            continue
        for path in sorted(base.rglob("*.py")):
            if "migrations" not in path.parts:
                yield path


class ImportCollector(ast.NodeVisitor):
    def __init__(self, module: str, is_package: bool):
        self.package = module if is_package else module.rpartition(".")[0]
        self.depth = 0
        self.found: list[tuple[str, bool]] = []  # (target module, inside a function)

    def visit_FunctionDef(self, node):
        self.depth += 1
        self.generic_visit(node)
        self.depth -= 1

    visit_AsyncFunctionDef = visit_FunctionDef

    def visit_Import(self, node):
        for alias in node.names:
            self.found.append((alias.name, self.depth > 0))

    def visit_ImportFrom(self, node):
        if node.level:
            base = self.package.split(".")
            base = base[: len(base) - (node.level - 1)]
            target = ".".join(base + ([node.module] if node.module else []))
        else:
            target = node.module or ""
        # "from pkg import submodule" imports the submodule: count the deeper name.
        for alias in node.names:
            self.found.append((f"{target}.{alias.name}", self.depth > 0))


def collect():
    modules = {module_name(p): p for p in source_files()}
    edges = []  # (from module, to module, inside function)
    for module, path in modules.items():
        collector = ImportCollector(module, path.name == "__init__.py")
        collector.visit(ast.parse(path.read_text(), str(path)))
        for target, inside in collector.found:
            while target and target not in modules:
                target = target.rpartition(".")[0]
            if target:
                edges.append((module, target, inside))
    return modules, edges


def strongly_connected(nodes, graph):
    index, low, stack, on_stack, result, counter = {}, {}, [], set(), [], [0]
    sys.setrecursionlimit(10000)

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                result.append(sorted(component))

    for v in nodes:
        if v not in index:
            visit(v)
    return result


def main():
    modules, edges = collect()
    table = defaultdict(lambda: [0, 0, set()])
    for source, target, inside in edges:
        a, b = app_of(source), app_of(target)
        if a and b and a != b:
            row = table[(a, b)]
            row[1 if inside else 0] += 1
            row[2].add(source)
    print("| from | to | top level | inside functions | files |")
    print("|---|---|---:|---:|---:|")
    for (a, b), (top, inside, files) in sorted(table.items()):
        print(f"| {a} | {b} | {top} | {inside} | {len(files)} |")
    print()
    print(
        f"Total: {sum(r[0] for r in table.values())} top-level imports between apps and "
        f"{sum(r[1] for r in table.values())} inside functions."
    )
    inside_all = sum(1 for s, t, i in edges if i and s != t)
    print(f"Imports inside functions anywhere (same app included): {inside_all}.")
    graph = defaultdict(set)
    for source, target, _inside in edges:
        if source != target and not target.startswith(source + "."):
            graph[source].add(target)
    circles = strongly_connected(sorted(modules), graph)
    print(f"Circles between files: {len(circles)}")
    for circle in circles:
        print(
            f"- {len(circle)} files: " + ", ".join(circle)
            if "--files" in sys.argv
            else f"- {len(circle)} files, e.g. {', '.join(circle[:4])} ..."
        )


if __name__ == "__main__":
    main()
