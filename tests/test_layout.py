"""The package's shape: stages that import only the stages below them, no import circles, no
module too long to read in one sitting. Read from the source (every import, lazy ones too)."""

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "classify_cli"
# the pipeline from bottom to top: a module may import its own stage and those before it
STAGES = ["util", "inputs", "text", "data", "model", "serve", "train", "cli"]
MAX_LINES = 400


def modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE).with_suffix("").parts
        found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imports(name: str, path: Path, known: set[str]) -> set[str]:
    """The package's modules that ``name`` imports anywhere in its code (inside functions too)."""
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]
    if name == "":
        package = []
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            elif (node.module or "").split(".")[0] == "classify_cli":
                target = node.module.partition(".")[2]
            else:
                continue
            for candidate in [target, *(f"{target}.{a.name}".lstrip(".") for a in node.names)]:
                if candidate in known and candidate != name:
                    found.add(candidate)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] == "classify_cli":
                    found.add(alias.name.partition(".")[2])
    return found


def graph() -> dict[str, set[str]]:
    known = modules()
    return {name: imports(name, path, set(known)) for name, path in known.items()}


def stage(name: str) -> int:
    """A module's place in the pipeline; the package's root (``__init__``, ``__main__``) is on top."""
    head = name.split(".")[0]
    return STAGES.index(head) if head in STAGES else len(STAGES)


def test_the_stages_are_the_packages():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert packages == set(STAGES)
    loose = {p.name for p in PACKAGE.glob("*.py")}
    assert loose == {"__init__.py", "__main__.py"}, "every module belongs to a stage"


@pytest.mark.parametrize("package", STAGES)
def test_each_stage_says_what_it_owns(package):
    doc = ast.get_docstring(ast.parse((PACKAGE / package / "__init__.py").read_text(encoding="utf-8")))
    assert doc and len(doc.splitlines()) == 1 and len(doc) > 40


def test_no_import_points_back_up_the_pipeline():
    # the root's lazy `load` (the Python API) is the one arrow allowed to point down from the top
    back = sorted(
        f"{name} -> {target}" for name, targets in graph().items() for target in targets if stage(target) > stage(name)
    )
    assert back == []


def test_there_are_no_import_circles():
    edges = graph()
    circles, state = [], {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = "open"
        for target in sorted(edges[node]):
            if state.get(target) == "open":
                circles.append(trail[trail.index(target) :] + [target])
            elif target not in state:
                visit(target, [*trail, target])
        state[node] = "done"

    for node in sorted(edges):
        if node not in state:
            visit(node, [node])
    assert circles == []


def test_no_module_is_longer_than_it_can_be_read():
    long = {name: n for name, path in modules().items() if (n := len(path.read_text().splitlines())) > MAX_LINES}
    assert long == {}


def test_the_check_sees_a_circle_and_an_arrow_back_up(tmp_path, monkeypatch):
    # the checks above read real files: here they must find what a bad layout has
    for package in ("util", "model"):
        (tmp_path / package).mkdir()
        (tmp_path / package / "__init__.py").write_text('"""x"""\n')
    (tmp_path / "util" / "a.py").write_text("from ..model import b\n")
    (tmp_path / "model" / "b.py").write_text("def f():\n    from ..util.a import x\n")
    monkeypatch.setitem(globals(), "PACKAGE", tmp_path)
    edges = graph()
    assert "model.b" in edges["util.a"] and "util.a" in edges["model.b"]  # a circle, through a lazy import
    assert stage("model.b") > stage("util.a")  # util.a's import points back up
