"""Exceptions and warnings raised by territoire_geo.

Every failure a user can cause raises a subclass of :class:`TerritoireError`
whose message says what was wrong and what to do about it. Leaves also
inherit the matching builtin so that ``except ValueError`` keeps working.

Exception tree::

    TerritoireError
    ├─ ConfigError (+ValueError)             bad settings, bad argument
    ├─ RecipeError (+ValueError)             invalid recipe, unknown step
    ├─ SourceError                           catalogue, hub or download failure
    │  ├─ SourceUnavailableError (+ConnectionError)
    │  ├─ AuthenticationError (+PermissionError)
    │  ├─ NoDataFoundError (+LookupError)     search returned nothing usable
    │  └─ ChecksumError                       downloaded bytes do not match
    ├─ DataError (+ValueError)
    │  ├─ CRSMismatchError
    │  ├─ MissingBandError (+LookupError)
    │  ├─ SchemaError                         attributes do not match a schema
    │  └─ ExpressionError                     unsafe or invalid formula
    └─ ExportError (+OSError)                 an output could not be written

    TerritoireWarning (UserWarning)
    ├─ CloudCoverWarning
    ├─ PartialCoverageWarning
    ├─ ScalingWarning                        scale/offset signals disagree
    └─ SchemaWarning

The command-line tool maps each family onto an exit code, see
:data:`EXIT_CODES`.
"""

from __future__ import annotations

__all__ = [
    "EXIT_CODES",
    "AuthenticationError",
    "CRSMismatchError",
    "ChecksumError",
    "CloudCoverWarning",
    "ConfigError",
    "DataError",
    "ExportError",
    "ExpressionError",
    "MissingBandError",
    "NoDataFoundError",
    "PartialCoverageWarning",
    "RecipeError",
    "ScalingWarning",
    "SchemaError",
    "SchemaWarning",
    "SourceError",
    "SourceUnavailableError",
    "TerritoireError",
    "TerritoireWarning",
    "exit_code_for",
]


class TerritoireError(Exception):
    """Root of every error territoire_geo raises on purpose."""


class ConfigError(TerritoireError, ValueError):
    """A setting, argument or configuration file is invalid."""


class RecipeError(TerritoireError, ValueError):
    """A recipe file is invalid or cannot be run."""


class SourceError(TerritoireError):
    """A catalogue, hub or download failed."""


class SourceUnavailableError(SourceError, ConnectionError):
    """A server could not be reached or kept failing after retries."""


class AuthenticationError(SourceError, PermissionError):
    """A server refused the credentials (HTTP 401/403)."""


class NoDataFoundError(SourceError, LookupError):
    """A search or a load found nothing usable."""


class ChecksumError(SourceError):
    """Downloaded bytes do not match the checksum the catalogue announced."""


class DataError(TerritoireError, ValueError):
    """Input data is unusable as given."""


class CRSMismatchError(DataError):
    """Two layers in different CRSs were combined without reprojection."""


class MissingBandError(DataError, LookupError):
    """A requested band is not available in an item or dataset."""


class SchemaError(DataError):
    """Attributes do not match the expected schema."""


class ExpressionError(DataError):
    """A formula is invalid or uses something the safe evaluator refuses."""


class ExportError(TerritoireError, OSError):
    """An output could not be written."""


class TerritoireWarning(UserWarning):
    """Root of the warnings territoire_geo emits."""


class CloudCoverWarning(TerritoireWarning):
    """Cloud filtering could not be done as asked (e.g. done client-side)."""


class PartialCoverageWarning(TerritoireWarning):
    """Data cover only part of the requested area or period."""


class ScalingWarning(TerritoireWarning):
    """Scale/offset signals of an item disagree; the documented one was used."""


class SchemaWarning(TerritoireWarning):
    """Attributes were repaired or inferred."""


#: Exit codes of the command-line tool, by error family (checked in order).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (ConfigError, 2),
    (RecipeError, 2),
    (SourceError, 3),
    (DataError, 4),
    (ExportError, 5),
    (TerritoireError, 1),
)


def exit_code_for(exc: BaseException) -> int:
    """Return the documented CLI exit code for an exception.

    Parameters
    ----------
    exc
        Any exception.

    Returns
    -------
    int
        2 usage/config/recipe, 3 source, 4 data, 5 export, 1 anything else.
    """
    for cls, code in EXIT_CODES:
        if isinstance(exc, cls):
            return code
    return 1
