"""saikika's errors, one family: every error saikika raises on purpose is a `SaikikaError`, so a caller can catch
saikika's failures without catching Python's own bugs. Where a builtin fits, an error also extends it (as skops'
`UntrustedTypesFoundException(TypeError)` does), so code that knew only the builtin keeps working. Each says
whether a retry can help."""


class SaikikaError(Exception):
    """Base class of saikika's own errors."""


class ConfigError(SaikikaError, ValueError):
    """A setting is missing or malformed; the message names the variable. Retrying cannot help: fix the setting."""


class TransientError(SaikikaError):
    """Retrying later may succeed (no champion yet, storage unavailable)."""


class NoChampionError(TransientError):
    """No model has been promoted yet, so nothing can be predicted."""


class ModelIntegrityError(SaikikaError, ValueError):
    """A model version's files cannot be trusted or used: a checksum that does not match, untrusted types, arrays
    or metadata that do not fit together, a failed smoke check, or scores that differ between the pipeline and the
    inference artifact. Loading raises it for every bad artifact, so callers catch this one type. Retrying cannot
    help: the version is refused; train or push another."""


class ItemError(SaikikaError, ValueError):
    """An input item breaks the item contract; the message names the field. The item is rejected with the reason."""


class NotJson(SaikikaError, ValueError):
    """Input that is not JSON Python can read; the message says why and where."""


class TrainingDataError(SaikikaError, ValueError):
    """The rows cannot train a model (too few rows or labels); the message says why. The run is recorded as
    skipped with that reason."""
