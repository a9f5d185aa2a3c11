"""Exceptions shared across saikika. Each says whether a retry can help."""


class SaikikaError(Exception):
    """Base class of saikika's own errors."""


class ConfigError(SaikikaError, ValueError):
    """A setting is missing or malformed; the message names the variable."""


class TransientError(SaikikaError):
    """Retrying later may succeed (no champion yet, storage unavailable)."""


class NoChampionError(TransientError):
    """No model has been promoted yet, so nothing can be predicted."""


class ModelIntegrityError(SaikikaError):
    """A model file does not match its checksum or holds untrusted types."""


class TrainingDataError(SaikikaError, ValueError):
    """The rows cannot train a model (too few rows or labels); the message says why."""
