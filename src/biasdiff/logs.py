"""Logging set-up for workflow scripts: everything goes to the rule's log file and to stderr."""

from __future__ import annotations

import logging
import sys
from pathlib import Path


def setup_logging(log_path: str | None = None, level: int = logging.INFO) -> logging.Logger:
    """Send the root logger to `log_path` (if given) and stderr; uncaught exceptions are logged too.

    Returns the "biasdiff" logger. Safe to call more than once.
    """
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(fmt)
        root.addHandler(handler)
    root.setLevel(level)

    def _excepthook(exc_type, exc, tb):
        logging.getLogger("biasdiff").error("%s: %s", exc_type.__name__, exc, exc_info=(exc_type, exc, tb))

    sys.excepthook = _excepthook
    return logging.getLogger("biasdiff")
