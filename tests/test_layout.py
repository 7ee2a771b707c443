"""The package's folders are its layers: every import runs down the stack, and no module imports itself back."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "t2fsnn"
# lowest first: a module may import from its own layer and the ones before it
LAYERS = ("t2fsnn", "t2fsnn.snn", "t2fsnn.experiments", "t2fsnn.book")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def layer(module: str) -> int:
    return max(i for i, prefix in enumerate(LAYERS) if module == prefix or module.startswith(prefix + "."))


def package_imports(path: Path, modules: set) -> set:
    """Every module of the package that ``path`` imports, at the top or inside a function."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] == "t2fsnn":
            assert node.level == 0, f"{path}: relative import; the package imports itself by absolute names"
            for alias in node.names:
                full = f"{node.module}.{alias.name}"
                found.add(full if full in modules else node.module)
        elif isinstance(node, ast.ImportFrom) and node.level:
            pytest.fail(f"{path}:{node.lineno}: relative import; the package imports itself by absolute names")
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name.split(".")[0] == "t2fsnn"}
    return found


@pytest.fixture(scope="module")
def graph():
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    return {name: package_imports(path, set(files)) & set(files) for name, path in files.items()}


def test_the_package_has_the_four_layers_as_folders():
    for prefix in LAYERS[1:]:
        folder = PACKAGE.parent / Path(*prefix.split("."))
        init = folder / "__init__.py"
        assert init.exists(), folder
        assert ast.get_docstring(ast.parse(init.read_text())), f"{init} says what lives there"


def test_no_import_runs_up_the_layers(graph):
    upward = [f"{importer} imports {imported}" for importer, targets in graph.items() if importer != "t2fsnn"
              for imported in targets if layer(imported) > layer(importer)]
    assert upward == []


def cycles(graph: dict) -> list:
    """Import cycles of ``graph``; a package's ``__init__`` importing the modules inside it is no cycle."""
    edges = {m: {t for t in ts if t != m and not t.startswith(m + ".")} for m, ts in graph.items()}
    state, found = {}, []

    def visit(node, path):
        state[node] = "open"
        for target in sorted(edges.get(node, ())):
            if state.get(target) == "open":
                found.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[node] = "done"

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])
    return found


def test_no_two_modules_import_each_other(graph):
    assert cycles(graph) == []


def test_the_cycle_check_sees_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a -> b -> c -> a"]
    assert cycles({"p": {"p.m"}, "p.m": {"p"}}) == []  # a package registering what it holds


def test_the_layer_check_sees_an_upward_import(tmp_path):
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from t2fsnn.book import runner\n")
    assert package_imports(source, {"t2fsnn.book.runner"}) == {"t2fsnn.book.runner"}
    assert layer("t2fsnn.book.runner") > layer("t2fsnn.snn.kernels")
