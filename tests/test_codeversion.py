"""Library code hashes (rule params): a change to a module changes the hash of exactly the names that cover it."""

import pytest

import biasdiff.codeversion as cv


def test_hash_follows_content(tmp_path, monkeypatch):
    pkg = tmp_path / "biasdiff"
    (pkg / "sample").mkdir(parents=True)
    (pkg / "sample" / "samplers.py").write_text("A = 1\n")
    (pkg / "sample" / "stage.py").write_text("B = 1\n")
    (pkg / "io.py").write_text("C = 1\n")
    monkeypatch.setattr(cv, "PACKAGE_DIR", pkg)
    whole, one, io = cv.code_version("sample"), cv.code_version("sample/samplers"), cv.code_version("io")
    assert cv.code_version("sample") == whole  # stable
    (pkg / "sample" / "stage.py").write_text("B = 2\n")
    assert cv.code_version("sample") != whole
    assert cv.code_version("sample/samplers") == one and cv.code_version("io") == io
    (pkg / "sample" / "samplers.py").write_text("A = 2\n")
    assert cv.code_version("sample/samplers") != one


def test_unknown_module_names_valid_ones():
    with pytest.raises(ValueError, match="valid"):
        cv.code_version("no_such_stage")
