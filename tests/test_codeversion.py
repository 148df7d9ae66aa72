"""Rule code hashes follow real imports: every biasdiff module a workflow script really loads is covered by that
script's hash, comments and docstrings are not, and the closure follows relative, nested and lazy imports."""

import shutil

import pytest

import biasdiff.codeversion as cv
from import_probe import ROOT, module_path, runtime_imports

SCRIPTS = sorted((ROOT / "scripts").glob("*.py"))


@pytest.fixture(scope="module")
def loaded():
    """script name -> biasdiff modules importing it really loads (a subprocess, not the code under test)."""
    return runtime_imports(SCRIPTS)


@pytest.fixture(scope="module")
def package_copy(tmp_path_factory):
    dest = tmp_path_factory.mktemp("src") / "biasdiff"
    shutil.copytree(cv.PACKAGE_DIR, dest, ignore=shutil.ignore_patterns("__pycache__"))
    return dest


def test_every_module_a_script_loads_changes_its_hash(loaded, package_copy):
    """A code change to any module a script's imports load must change that script's hash (the hand lists missed
    e.g. synth for build_manifest and manifest/seeds/devices for audit_samples)."""
    base = {s.name: cv.script_code_version(s, package_copy) for s in SCRIPTS}
    src = package_copy.parent
    for module in sorted(set().union(*loaded.values())):
        path = module_path(src, module)
        original = path.read_text()
        path.write_text(original + "\n_EDITED_BY_TEST = 1\n")
        try:
            for script in SCRIPTS:
                if module in loaded[script.name]:
                    assert cv.script_code_version(script, package_copy) != base[script.name], (script.name, module)
        finally:
            path.write_text(original)


def test_comments_docstrings_and_formatting_change_no_hash(package_copy):
    script = ROOT / "scripts" / "build_manifest.py"
    before = cv.script_code_version(script, package_copy)
    path = package_copy / "grid.py"
    original = path.read_text()
    try:
        edited = original.replace('"""', '"""Edited docstring. ', 1) + "\n# a comment\n"
        path.write_text(edited.replace("\n\n\n", "\n\n\n\n"))
        assert cv.script_code_version(script, package_copy) == before
        path.write_text(original.replace("def ", "def _unused_helper():\n    return 1\n\n\ndef ", 1))
        assert cv.script_code_version(script, package_copy) != before
    finally:
        path.write_text(original)


def test_closure_follows_relative_nested_and_lazy_imports(tmp_path):
    pkg = tmp_path / "biasdiff"
    (pkg / "a").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "a" / "__init__.py").write_text("from .entry import run\n")
    (pkg / "a" / "entry.py").write_text("def run():\n    from biasdiff import lazy\n    from . import sibling\n")
    (pkg / "a" / "sibling.py").write_text("from ..deep import leaf\n")
    (pkg / "deep").mkdir()
    (pkg / "deep" / "__init__.py").write_text("")
    (pkg / "deep" / "leaf.py").write_text("X = 1\n")
    (pkg / "lazy.py").write_text("Y = 1\n")
    (pkg / "unused.py").write_text("Z = 1\n")
    script = tmp_path / "script.py"
    script.write_text("from biasdiff.a import run\nrun()\n")
    assert cv.script_modules(script, pkg) == [
        "biasdiff", "biasdiff.a", "biasdiff.a.entry", "biasdiff.a.sibling", "biasdiff.deep", "biasdiff.deep.leaf",
        "biasdiff.lazy",
    ]
    before = cv.script_code_version(script, pkg)
    (pkg / "unused.py").write_text("Z = 2\n")
    assert cv.script_code_version(script, pkg) == before
    (pkg / "deep" / "leaf.py").write_text("X = 2\n")
    assert cv.script_code_version(script, pkg) != before


def test_package_data_of_a_reached_package_is_hashed(package_copy):
    script = ROOT / "scripts" / "stablebias_audit.py"
    before = cv.script_code_version(script, package_copy)
    table = next((package_copy / "resources" / "stablebias").glob("*.csv"))
    original = table.read_bytes()
    try:
        table.write_bytes(original + b"\n")
        assert cv.script_code_version(script, package_copy) != before
    finally:
        table.write_bytes(original)


def test_code_version_of_named_modules_and_unknown_names(package_copy):
    assert cv.code_version("biasdiff.io", package_dir=package_copy) == cv.code_version("biasdiff.io", package_dir=package_copy)
    with pytest.raises(ValueError, match="valid modules"):
        cv.code_version("biasdiff.no_such_stage")


def test_rules_hash_the_script_they_run():
    """Each rule's code param is script_code(<the script of its own script: directive>)."""
    import re

    for smk in (ROOT / "rules").glob("*.smk"):
        for block in re.split(r"(?m)^rule ", smk.read_text())[1:]:
            script = re.search(r'script:\s*\n\s*"\.\./scripts/(\w+)\.py"', block)
            code = re.search(r'code=script_code\("(\w+)"\)', block)
            assert script and code and script.group(1) == code.group(1), block.split(":", 1)[0]
