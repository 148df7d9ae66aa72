"""Content hashes of the library code a rule runs, passed to rules as `params` so that a change to that code reruns
the rule (Snakemake tracks the script file itself, not the library it imports).

What a rule runs is found from real imports, not from hand-written lists: `script_code_version(script)` parses the
script's imports of `biasdiff`, follows every `import`/`from ... import` statement of each module it reaches (at
any depth: imports inside functions count, so lazily imported code is covered too), adds the `__init__` of every
package on the way (importing `biasdiff.a.b` runs `biasdiff/__init__.py` and `biasdiff/a/__init__.py`) and the data
files under `biasdiff/resources/<package>/` of each package reached, and hashes that closure.

Each module is hashed by its syntax tree without docstrings (`ast.dump`), not by its bytes: editing a comment or a
docstring, or reformatting, reruns nothing, while any change to what the code does (a statement, a literal, a
default) changes the hash. The tree's text depends on the Python version's `ast`, so a Python upgrade reruns every
rule once -- the conservative direction.
"""

from __future__ import annotations

import ast
import functools
import hashlib
from pathlib import Path
from typing import Iterable

PACKAGE = "biasdiff"
PACKAGE_DIR = Path(__file__).resolve().parent
RESOURCES = "resources"


def module_file(name: str, package_dir: Path | None = None) -> Path | None:
    """The source file of dotted module `name` (biasdiff.x.y -> x/y.py or x/y/__init__.py), None if none exists."""
    return _module_file(name, package_dir or PACKAGE_DIR)


@functools.lru_cache(maxsize=4096)
def _module_file(name: str, root: Path) -> Path | None:
    parts = name.split(".")
    if parts[0] != PACKAGE:
        return None
    base = root.joinpath(*parts[1:])
    if base.with_suffix(".py").is_file() and len(parts) > 1:
        return base.with_suffix(".py")
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return None


def _is_package(name: str, package_dir: Path) -> bool:
    file = module_file(name, package_dir)
    return file is not None and file.name == "__init__.py"


_PARSED: dict[tuple, tuple[ast.AST, str]] = {}


def _parse(file: Path) -> tuple[ast.AST, str]:
    """(syntax tree, digest of the tree without docstrings) of a source file, cached per content (parsing, not
    reading, is the cost): the workflow hashes ~15 scripts whose closures share most modules."""
    raw = file.read_bytes()
    key = (str(file), hashlib.sha256(raw).digest())
    if key not in _PARSED:
        source = raw.decode()
        tree = ast.parse(source, filename=str(file))
        stripped = _strip_docstrings(ast.parse(source, filename=str(file)))
        digest = hashlib.sha256(ast.dump(stripped, include_attributes=False).encode()).hexdigest()
        _PARSED[key] = (tree, digest)
    return _PARSED[key]


def imported_names(tree: ast.AST, module: str | None, package_dir: Path) -> set[str]:
    """Every `biasdiff` module an AST imports anywhere (dotted names). `module` is the importing module's name (for
    relative imports; None for a script outside the package)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if module is None:
                    continue
                package = module if _is_package(module, package_dir) else module.rpartition(".")[0]
                for _ in range(node.level - 1):
                    package = package.rpartition(".")[0]
                base = f"{package}.{node.module}" if node.module else package
            else:
                base = node.module or ""
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)  # `from pkg import submodule`
    found = set()
    for name in names:
        if name.split(".")[0] != PACKAGE:
            continue
        parts = name.split(".")
        for i in range(1, len(parts) + 1):  # the module and every package above it
            prefix = ".".join(parts[:i])
            if module_file(prefix, package_dir) is not None:
                found.add(prefix)
    return found


def _strip_docstrings(tree: ast.AST) -> ast.AST:
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant) \
                    and isinstance(body[0].value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return tree


_IMPORTS: dict[tuple, set[str]] = {}


def _imports_of(file: Path, module: str | None, root: Path) -> set[str]:
    tree, digest = _parse(file)
    key = (digest, module, str(root))
    if key not in _IMPORTS:
        _IMPORTS[key] = imported_names(tree, module, root)
    return _IMPORTS[key]


def module_closure(entries: Iterable[str], package_dir: Path | None = None) -> list[str]:
    """Sorted dotted names of `entries` (biasdiff modules) and every biasdiff module they import, transitively."""
    root = package_dir or PACKAGE_DIR
    seen: set[str] = set()
    todo = [name for name in entries if module_file(name, root) is not None]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        todo.extend(_imports_of(module_file(name, root), name, root) - seen)
    return sorted(seen)


def script_modules(script: str | Path, package_dir: Path | None = None) -> list[str]:
    """The biasdiff modules a script runs: the closure of its own imports."""
    root = package_dir or PACKAGE_DIR
    return module_closure(_imports_of(Path(script), None, root), root)


def _hash_modules(names: Iterable[str], root: Path) -> str:
    digest = hashlib.sha256()
    packages = set()
    for name in sorted(names):
        digest.update(name.encode() + b"\0" + _parse(module_file(name, root))[1].encode() + b"\0")
        if len(name.split(".")) > 1:
            packages.add(name.split(".")[1])
    for package in sorted(packages):
        data = root / RESOURCES / package
        if data.is_dir():
            for path in sorted(p for p in data.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def script_code_version(script: str | Path, package_dir: Path | None = None) -> str:
    """SHA-256 (16 hex) of the library code `script` runs (see the module docstring): a rule's `code` param."""
    root = package_dir or PACKAGE_DIR
    return _hash_modules(script_modules(script, root), root)


def code_version(*modules: str, package_dir: Path | None = None) -> str:
    """SHA-256 (16 hex) of named biasdiff modules and everything they import (`code_version("biasdiff.sample.stage")`),
    for code that is not a workflow script (benchmarks). Unknown names raise ValueError naming the packages."""
    root = package_dir or PACKAGE_DIR
    unknown = [m for m in modules if module_file(m, root) is None]
    if unknown:
        valid = sorted(p.stem for p in root.iterdir() if (p.suffix == ".py" or p.is_dir()) and not p.name.startswith("_"))
        raise ValueError(f"no biasdiff module(s) {unknown}; name them as biasdiff.<module>, valid modules: {valid}")
    return _hash_modules(module_closure(modules, root), root)
