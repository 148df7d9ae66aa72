"""The library's seams: stage packages import only the shared modules, never another stage's internals."""

from __future__ import annotations

import ast
from pathlib import Path

import biasdiff

PACKAGE = Path(biasdiff.__file__).resolve().parent
# Packages that are one stage of the workflow (what a rule's script runs).
STAGES = {"synth", "manifest", "embed", "train", "sample", "audit", "scoredecomp", "fairface", "stablebias",
          "experiment"}
# The config checker validates every stage's section (e.g. prompt attributes against what the renderer can draw, the
# experiment's arms against what arms may change).
ALLOWED = {("config.py", "biasdiff.synth.procedural"), ("config.py", "biasdiff.experiment.design")}


def _imports(path: Path) -> set[str]:
    """Every biasdiff module a file imports (at any depth, lazy imports included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
    return {name for name in found if name == "biasdiff" or name.startswith("biasdiff.")}


def stage_crossings() -> list[str]:
    """'file imports module' for every import of one stage package's modules by another package (a stage or a
    shared module)."""
    crossings = []
    for path in sorted(PACKAGE.rglob("*.py")):
        own = path.relative_to(PACKAGE).parts[0]
        for module in _imports(path):
            parts = module.split(".")
            target = parts[1] if len(parts) > 1 else ""
            if target in STAGES and target != own and (str(path.relative_to(PACKAGE)), module) not in ALLOWED:
                crossings.append(f"{path.relative_to(PACKAGE)} imports {module}")
    return crossings


def test_the_stage_list_matches_the_packages():
    packages = {p.name for p in PACKAGE.iterdir() if (p / "__init__.py").is_file()}
    assert STAGES <= packages
    assert packages - STAGES == {"artifacts", "model", "scores", "vectors"}  # the shared packages


def test_no_stage_imports_another_stage():
    assert stage_crossings() == []


def test_the_check_sees_a_crossing(tmp_path, monkeypatch):
    """The scan is not vacuous: a planted lazy import of another stage's module is reported."""
    fake = tmp_path / "biasdiff"
    (fake / "sample").mkdir(parents=True)
    (fake / "sample" / "x.py").write_text("def f():\n    from biasdiff.train.trainer import train_ddpm\n")
    (fake / "model").mkdir()
    (fake / "model" / "y.py").write_text("from biasdiff.model.unet import build_unet\n")
    monkeypatch.setattr(__import__(__name__), "PACKAGE", fake)
    assert stage_crossings() == ["sample/x.py imports biasdiff.train.trainer"]


def test_schemas_ship_inside_the_package(tmp_path):
    """The config schemas are package data: a wheel of the project carries them, and the config module finds them
    beside itself (not through a source checkout's layout)."""
    import subprocess
    import sys
    import zipfile

    from biasdiff import config

    assert config.SCHEMA_DIR.parent == PACKAGE and (config.SCHEMA_DIR / config.MAIN_SCHEMA).is_file()
    import shutil

    root, project = PACKAGE.parents[1], tmp_path / "project"  # a copy: building leaves build/ beside the sources
    shutil.copytree(PACKAGE, project / "src" / "biasdiff", ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(root / name, project / name)
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation", str(project),
                    "-w", str(tmp_path)], check=True, capture_output=True)
    (wheel,) = tmp_path.glob("biasdiff-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped = {n.rsplit("/", 1)[-1] for n in names if n.startswith("biasdiff/schemas/")}
    assert shipped == {p.name for p in config.SCHEMA_DIR.glob("*.schema.yaml")} and config.MAIN_SCHEMA in shipped
