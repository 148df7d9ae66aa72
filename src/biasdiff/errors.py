"""Exceptions with one-line messages that name the bad thing and what would be valid."""


class BiasdiffError(Exception):
    """Base class: every error the pipeline raises on bad input."""


class ConfigError(BiasdiffError):
    """A config key or value is invalid; raised before any job runs."""


class DataError(BiasdiffError):
    """An input artifact (file, image, table, word) is missing or malformed."""


class TrainingError(BiasdiffError):
    """Training cannot continue (e.g. non-finite loss)."""
