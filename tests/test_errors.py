"""The exception tree: one root, builtin mix-ins, documented exit codes."""

from __future__ import annotations

import inspect

import pytest

from territoire_geo import errors


def _classes(base: type) -> list[type]:
    return [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, base) and c is not base]


def test_every_error_derives_from_the_root() -> None:
    exceptions = [c for _, c in inspect.getmembers(errors, inspect.isclass) if issubclass(c, BaseException)]
    for cls in exceptions:
        if issubclass(cls, Warning):
            assert issubclass(cls, errors.TerritoireWarning), cls
        else:
            assert issubclass(cls, errors.TerritoireError), cls


@pytest.mark.parametrize(("cls", "code"), [
    (errors.ConfigError, 2), (errors.RecipeError, 2), (errors.SourceError, 3),
    (errors.SourceUnavailableError, 3), (errors.AuthenticationError, 3), (errors.NoDataFoundError, 3),
    (errors.ChecksumError, 3), (errors.DataError, 4), (errors.CRSMismatchError, 4),
    (errors.MissingBandError, 4), (errors.SchemaError, 4), (errors.ExpressionError, 4),
    (errors.ExportError, 5), (errors.TerritoireError, 1), (RuntimeError, 1),
])
def test_exit_codes(cls: type, code: int) -> None:
    assert errors.exit_code_for(cls("x")) == code


def test_builtin_mixins_keep_except_clauses_working() -> None:
    assert issubclass(errors.ConfigError, ValueError)
    assert issubclass(errors.MissingBandError, LookupError)
    assert issubclass(errors.SourceUnavailableError, ConnectionError)
    assert issubclass(errors.ExportError, OSError)


def test_all_is_complete() -> None:
    public = {n for n, c in inspect.getmembers(errors, inspect.isclass) if c.__module__ == errors.__name__}
    assert public <= set(errors.__all__)
    assert len(errors.__all__) == len(set(errors.__all__))  # order is ruff's (RUF022)
