"""The package graph, read from the code's imports: no cycle, and every import goes down the layers
(web and CLI, then the runtime, the request path, the snapshot, the domains, then wire types and the
database). The shipped package imports nothing of the tests, and its wheel holds no fake servers."""

from __future__ import annotations

import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "gateway"
# Lowest first; a package may import its own layer's packages (acyclically) and those below.
LAYERS: list[set[str]] = [
    {"errors", "yaml_file", "settings"},
    {"wire", "upstream", "db", "web", "vault"},
    {"catalog", "keys", "ledger", "audit", "access", "directory"},
    {"quotas", "providers"},
    {"snapshot"},
    {"proxy", "ingress"},
    {"runtime"},
    {"admin", "health", "app", "cli", "__main__"},
]
RANK = {name: rank for rank, layer in enumerate(LAYERS) for name in layer}


def package_graph() -> dict[str, set[str]]:
    graph: dict[str, set[str]] = {}
    for path in PACKAGE.rglob("*.py"):
        relative = path.relative_to(PACKAGE)
        if relative.parts == ("__init__.py",):
            continue
        source = relative.parts[0] if len(relative.parts) > 1 else relative.stem
        edges = graph.setdefault(source, set())
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            names = [node.module or ""] if isinstance(node, ast.ImportFrom) else []
            names += [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            for name in names:
                parts = name.split(".")
                if parts[0] == "gateway" and len(parts) > 1 and parts[1] != source:
                    edges.add(parts[1])
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(node: str, path: list[str]) -> list[str] | None:
        state[node] = 1
        for target in sorted(graph.get(node, ())):
            if state.get(target) == 1:
                return [*path[path.index(target) :], target] if target in path else [node, target]
            if target not in state and (found := visit(target, [*path, target])):
                return found
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (found := visit(start, [start])):
            return found
    return None


def test_the_package_graph_has_no_cycle_and_imports_only_downwards() -> None:
    graph = package_graph()
    assert set(graph) <= set(RANK), f"packages in no layer: {sorted(set(graph) - set(RANK))}"
    assert _cycle(graph) is None, f"import cycle: {' -> '.join(_cycle(graph) or [])}"
    upward = sorted(f"{a} -> {b}" for a, targets in graph.items() for b in targets if RANK[b] > RANK[a])
    assert not upward, f"imports that go up a layer: {upward}"


def test_the_shipped_package_imports_nothing_of_the_tests() -> None:
    for path in PACKAGE.rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in {"fakes", "harness", "tests"}, path


def test_the_wheel_holds_no_fake_servers(tmp_path: Path) -> None:
    built = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp_path), "."],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    (wheel,) = tmp_path.glob("gateway-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert any(name.startswith("gateway/proxy/pipeline.py") for name in names)
    assert not [name for name in names if "fake" in name or "/testing/" in name or name.startswith("tests/")]


if __name__ == "__main__":  # python tests/test_layering.py: the graph, a layer a line, top first
    found = package_graph()
    for rank in reversed(range(len(LAYERS))):
        for name in sorted(LAYERS[rank] & set(found)):
            print(f"{name:10} -> {', '.join(sorted(found[name])) or '-'}")
