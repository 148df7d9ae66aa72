"""Reading a table another rule wrote: present, readable, and holding the columns the reader uses, or a one-line
DataError that names the file and the rule that makes it."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import pandas as pd

from biasdiff.errors import DataError


def read_table(path: str | Path, columns: Sequence[str], made_by: str) -> pd.DataFrame:
    """The Parquet table at `path`, checked to exist and to hold `columns`; `made_by` is the rule that writes it (named
    in the error, so the user knows what to rerun)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path} does not exist; it is made by the rule {made_by}")
    try:
        table = pd.read_parquet(path)
    except (OSError, ValueError) as exc:  # pyarrow's ArrowInvalid is a ValueError
        raise DataError(f"{path} is not a readable Parquet table ({str(exc).splitlines()[0][:120]}); rerun the rule "
                        f"{made_by} (snakemake --forcerun {made_by})") from exc
    missing = [c for c in columns if c not in table.columns]
    if missing:
        raise DataError(f"{path} lacks columns {missing} (has {list(table.columns)}); rerun the rule {made_by}")
    return table
