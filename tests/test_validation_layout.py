"""The layout of tailext.validate: no import cycles (function-level imports included), one
seeding scheme, nothing generically named installed, every module importable on its own."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import tailext

PACKAGE = Path(tailext.__file__).parent / "validate"
ROOT = Path(tailext.__file__).parents[1]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _imports(name: str, path: Path) -> set[str]:
    """Every module of tailext.validate that ``name`` imports, at any depth of its code."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")
                anchor = anchor[:len(anchor) - node.level + 1]
                base = ".".join(anchor + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        else:
            continue
        found.update(t for t in targets if t in MODULES and t != name)
    return found


GRAPH = {name: _imports(name, path) for name, path in MODULES.items()}


def test_the_graph_sees_function_level_and_relative_imports():
    assert "tailext.validate.runner" in GRAPH["tailext.validate.theory.appendix_e"]
    # imported inside a function only
    assert "tailext.validate.montecarlo.kernels" in GRAPH["tailext.validate.montecarlo.engine"]


def test_no_import_cycles():
    state, cycles = {}, []

    def visit(node, stack):
        state[node] = "open"
        for target in sorted(GRAPH[node]):
            if state.get(target) == "open":
                cycles.append(stack[stack.index(target):] + [target])
            elif target not in state:
                visit(target, stack + [target])
        state[node] = "done"

    for name in sorted(GRAPH):
        if name not in state:
            visit(name, [name])
    assert cycles == []


def test_subpackages_depend_only_downwards():
    # the jobs do not import each other; shared modules import no job
    jobs = ("montecarlo", "theory", "simulator", "posttrain")
    allowed = {"theory": {"montecarlo"}}
    for name, targets in GRAPH.items():
        job = name.split(".")[2] if name.count(".") >= 3 else None
        for target in targets:
            other = target.split(".")[2] if target.count(".") >= 3 else None
            if other in jobs and other != job:
                assert other in allowed.get(job, set()), (name, target)


def _calls(tree):
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            yield (func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")), node


def test_one_seeding_scheme():
    # every random stream comes from tailext.validate.seeding (SeedSequence spawn keys of
    # documented integers): no string hashing, no ad hoc generators or derived seeds
    for name, path in MODULES.items():
        if name == "tailext.validate.seeding":
            continue
        tree = ast.parse(path.read_text())
        imported = {alias.name for node in ast.walk(tree)
                    if isinstance(node, (ast.Import, ast.ImportFrom)) for alias in node.names}
        assert not imported & {"zlib", "hashlib", "crc32"}, name
        for function, call in _calls(tree):
            assert function not in ("default_rng", "SeedSequence", "hash", "crc32", "seed",
                                    "RandomState"), (name, function, call.lineno)
            if function == "manual_seed":  # a seed handed in, never one computed in place
                assert not any(isinstance(a, ast.BinOp) for a in call.args), (name,
                                                                              call.lineno)


def test_installed_packages_are_under_tailext():
    text = (ROOT / "pyproject.toml").read_text()
    assert 'include = ["tailext*"]' in text
    assert not (ROOT / "validation" / "__init__.py").exists()  # results and README only


def test_import_tailext_loads_no_check():
    code = ("import sys, tailext; "
            "print(sorted(m for m in sys.modules if m.startswith('tailext.validate') "
            "or m in ('matplotlib', 'tqdm', 'torch')))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True, cwd=ROOT)
    assert done.stdout.strip() == "[]"


def test_every_module_imports_in_a_fresh_interpreter():
    torch_free = [name for name in MODULES if not (".posttrain." in name and name.rsplit(
        ".", 1)[1] not in ("config", "report", "command", "__init__"))]
    names = list(MODULES) if _has("torch") else torch_free
    code = "import importlib, sys\nfor name in sys.argv[1:]:\n    importlib.import_module(name)\n"
    subprocess.run([sys.executable, "-c", code, *names], check=True, cwd=ROOT)


def _has(module):
    import importlib.util

    return importlib.util.find_spec(module) is not None


@pytest.mark.parametrize("name", sorted(MODULES))
def test_every_module_says_what_it_does(name):
    doc = ast.get_docstring(ast.parse(MODULES[name].read_text()))
    assert doc and len(doc) > 40, name
