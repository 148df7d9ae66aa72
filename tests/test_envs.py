"""The conda environments (envs/*.yaml) carry exactly the pins of requirements.txt, torch from the right index, and
every rule of the workflow names an environment file that exists."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
ENVS = {"biasdiff-cpu": "https://download.pytorch.org/whl/cpu", "biasdiff-cuda": "https://download.pytorch.org/whl/cu126"}


def requirement_pins(text: str) -> dict[str, str]:
    """name (lower case, '_' -> '-') -> version of every `name==version` line; fails on any unpinned requirement."""
    pins = {}
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([A-Za-z0-9_.+\-]+)", line)
        assert m, f"requirement not pinned with ==: {raw!r}"
        pins[m.group(1).lower().replace("_", "-")] = m.group(2)
    return pins


def env_spec(name: str) -> dict:
    return yaml.safe_load((ROOT / "envs" / f"{name}.yaml").read_text())


def pip_section(spec: dict) -> list[str]:
    sections = [d["pip"] for d in spec["dependencies"] if isinstance(d, dict) and "pip" in d]
    assert len(sections) == 1, "expected exactly one pip: section"
    return sections[0]


@pytest.mark.parametrize("name", sorted(ENVS))
def test_env_pins_equal_requirements(name):
    wanted = requirement_pins((ROOT / "requirements.txt").read_text())
    spec = env_spec(name)
    assert spec["name"] == name
    assert requirement_pins("\n".join(pip_section(spec))) == wanted


@pytest.mark.parametrize("name,index", sorted(ENVS.items()))
def test_env_takes_torch_from_its_index(name, index):
    options = [line for line in pip_section(env_spec(name)) if line.startswith("-")]
    assert f"--extra-index-url {index}" in options


@pytest.mark.parametrize("name", sorted(ENVS))
def test_env_python_matches_project(name):
    pyproject = (ROOT / "pyproject.toml").read_text()
    minimum = re.search(r'requires-python = ">=(\d+\.\d+)"', pyproject).group(1)
    pythons = [d for d in env_spec(name)["dependencies"] if isinstance(d, str) and d.startswith("python")]
    assert pythons and pythons[0].split("=")[-1] >= minimum


def test_every_rule_names_an_existing_env():
    for smk in sorted((ROOT / "rules").glob("*.smk")):
        for block in re.split(r"^rule ", smk.read_text(), flags=re.M)[1:]:
            name = block.split(":", 1)[0].strip()
            m = re.search(r"^\s+conda:\s*\n\s+\"([^\"]+)\"", block, flags=re.M)
            assert m, f"rule {name} in {smk.name} has no conda: directive"
            assert (smk.parent / m.group(1)).resolve().is_file(), f"rule {name}: {m.group(1)} does not exist"


def test_requirements_lock_agrees_with_requirements():
    wanted = requirement_pins((ROOT / "requirements.txt").read_text())
    locked = requirement_pins((ROOT / "requirements.lock").read_text())
    for name, version in wanted.items():
        if name == "torch":  # the lock records the local wheel tag (2.13.0+cpu)
            assert locked.get(name, "").split("+")[0] == version
        else:
            assert locked.get(name) == version, f"{name}: requirements.txt {version}, requirements.lock {locked.get(name)}"
