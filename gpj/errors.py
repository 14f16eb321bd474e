"""User-facing errors: gpj's entry point shows these as one line, without a traceback."""


class GpjError(Exception):
    """Base class for errors caused by the user's inputs or environment, not by a bug."""


class ConfigError(GpjError):
    """A config field holds an invalid value."""


class DataError(GpjError):
    """A dataset is unknown, unavailable or cannot be read."""


class CheckpointError(GpjError):
    """A checkpoint cannot be found, read or matched to the current model."""


class TrainingDiverged(GpjError):
    """The training loss became non-finite."""


class BudgetReached(GpjError):
    """A run stopped at its time budget, its runs checkpointed; the same command resumes."""
