"""Which biasdiff modules each workflow script really loads, measured by importing it -- independent of
biasdiff.codeversion's static analysis, so tests can check that analysis against it.

One interpreter imports the heavy third-party libraries once, then forks a child per script; each child runs only the
script's import statements (the rest needs a live `snakemake` object) and reports the `biasdiff` modules in
`sys.modules`.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

_PROBE = r"""
import ast, json, os, sys
sys.path.insert(0, sys.argv[1])
import numpy, pandas, torch, diffusers, transformers, matplotlib  # warm, shared by the forked children
assert not [m for m in sys.modules if m.split(".")[0] == "biasdiff"]
result = {}
for script in sys.argv[2:]:
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(read)
        tree = ast.parse(open(script).read())
        code = "\n".join(ast.unparse(n) for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom)))
        exec(compile(code, script, "exec"), {"__name__": "probe"})
        names = sorted(m for m in sys.modules if m.split(".")[0] == "biasdiff")
        os.write(write, json.dumps(names).encode())
        os._exit(0)
    os.close(write)
    data = b""
    while chunk := os.read(read, 1 << 16):
        data += chunk
    _, status = os.waitpid(pid, 0)
    if status != 0:
        raise SystemExit(f"importing {script} failed")
    result[os.path.basename(script)] = json.loads(data)
print(json.dumps(result))
"""


def runtime_imports(scripts: list[Path], src: Path = ROOT / "src") -> dict[str, set[str]]:
    """script file name -> the biasdiff modules its imports load (dotted names)."""
    out = subprocess.run([sys.executable, "-c", _PROBE, str(src), *map(str, scripts)], capture_output=True, text=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    return {name: set(mods) for name, mods in json.loads(out.stdout.strip().splitlines()[-1]).items()}


def rule_scripts(rules_dir: Path = ROOT / "rules") -> dict[str, str]:
    """rule name -> the script file name its `script:` directive runs (read from rules/*.smk as text)."""
    found = {}
    for smk in sorted(rules_dir.glob("*.smk")):
        for block in re.split(r"(?m)^rule ", smk.read_text())[1:]:
            name = block.split(":", 1)[0].strip()
            m = re.search(r'script:\s*\n\s*"\.\./scripts/([\w.]+)"', block)
            if m:
                found[name] = m.group(1)
    return found


def module_path(src: Path, name: str) -> Path:
    """The file of dotted module `name` under `src` (a package's __init__.py for a package)."""
    base = src.joinpath(*name.split("."))
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else base / "__init__.py"
