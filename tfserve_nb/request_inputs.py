"""What a predict request sends: the caller's ``x`` as one array per signature input.

:func:`request_inputs` is the one place that reads ``x``, for gRPC and REST alike. ``x`` is

- an array-like, for a signature with a single input;
- a dict keyed by input alias, or a pandas ``DataFrame`` whose columns are named after the
  inputs (``petal-width``, ``f.x``, ``2nd`` ... any alias, as the signature spells it).

Dict values and DataFrame columns are read as *columns*: one entry per example. Each becomes
the array its input's ``TensorSpec`` asks for:

========================  ===========================================================
input shape               a column of ``n`` scalars is sent as
========================  ===========================================================
``[?]``                   ``[n]`` (flat)
``[?,1]`` or ``[?,?]``    ``[n,1]`` (a column vector)
anything else             as given; a column whose cells are arrays (a DataFrame
                          column of lists, say) is stacked to ``[n, *cell shape]``
========================  ===========================================================

A value that already has the input's rank is sent as it is, so a dict of batched arrays
(``{"a": [[1.0, 2.0]]}``) means what it always meant. Values are cast to the input's dtype.

pandas is optional: it is never imported here. A DataFrame is recognised by its class in the
already imported ``pandas`` module (a DataFrame cannot exist before pandas is imported).
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

import numpy as np

from .errors import InvalidArgumentError
from .protocol.signature import Signature, TensorSpec

__all__ = ["request_inputs"]


def request_inputs(
    x: Any, signature: Signature, *, model_name: str, version: int | None = None
) -> dict[str, np.ndarray]:
    """The arrays a predict request sends for ``x`` under ``signature``, keyed by input alias
    (see the module docstring for what ``x`` may be and how columns are shaped).

    ``model_name`` and ``version`` (the version ``signature`` was read from, if known) only
    name the model in error messages.

    Raises:
        InvalidArgumentError (a ValueError): a dict or DataFrame whose names are not exactly
            the signature's inputs (naming the missing and the extra ones), a bare array for a
            signature with several inputs, or values that do not convert to an input's dtype
            (strings for a float, NaN for an integer, ragged cells).
    """
    where = f"model {model_name!r}" + (f" version {version}" if version is not None else "")
    where += f" signature {signature.key!r}"
    frame = _data_frame_columns(x)
    columns = frame if frame is not None else dict(x) if isinstance(x, Mapping) else None
    if columns is None:
        if len(signature.inputs) != 1:
            raise InvalidArgumentError(
                f"{where} has inputs {sorted(signature.inputs)}: pass a dict or a pandas "
                "DataFrame keyed by those names"
            )
        ((alias, spec),) = signature.inputs.items()
        return {alias: _cast(x, spec, where)}
    _check_names(columns, signature, where, "DataFrame columns" if frame is not None else "keys")
    return {
        alias: _column_input(value, signature.inputs[alias], where)
        for alias, value in columns.items()
    }


def _data_frame_columns(x: Any) -> dict[Any, Any] | None:
    """``x``'s columns by name if ``x`` is a pandas DataFrame, else ``None``; never imports
    pandas."""
    pandas = sys.modules.get("pandas")
    if pandas is None or not isinstance(x, pandas.DataFrame):
        return None
    duplicated = sorted({str(c) for c in x.columns[x.columns.duplicated()]})
    if duplicated:
        raise InvalidArgumentError(
            f"the DataFrame has duplicate columns {duplicated}: name each once"
        )
    return {name: x[name].to_numpy() for name in x.columns}


def _check_names(columns: Mapping[Any, Any], signature: Signature, where: str, what: str) -> None:
    missing = sorted(set(signature.inputs) - set(columns))
    extra = sorted(set(columns) - set(signature.inputs), key=str)
    if not missing and not extra:
        return
    problems = []
    if missing:
        problems.append(f"missing {missing}")
    if extra:
        problems.append(f"extra {extra}")
    hint = "rename or drop them to match"
    if len(signature.inputs) == 1 and what == "DataFrame columns":
        hint += "; to send the whole frame as the one input's matrix, pass df.to_numpy()"
    raise InvalidArgumentError(
        f"{where} takes inputs {sorted(signature.inputs)}; the {what} have "
        f"{' and '.join(problems)}: {hint}"
    )


def _column_input(values: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """One column (an entry per example) as the array ``spec`` asks for."""
    array = _cast(_stacked(values, spec, where), spec, where)
    column_vector = spec.shape is not None and len(spec.shape) == 2 and spec.shape[1] in (1, None)
    return array.reshape(-1, 1) if array.ndim == 1 and column_vector else array


def _stacked(values: Any, spec: TensorSpec, where: str) -> Any:
    """``values`` with cells that are arrays (a DataFrame column of lists) stacked into one
    array, a row per cell; anything else unchanged."""
    if hasattr(values, "__array__") and not isinstance(values, np.ndarray):
        values = np.asarray(values)  # a pandas Series, say
    if not (isinstance(values, np.ndarray) and values.dtype == object and values.ndim == 1):
        return values
    if not values.size or np.ndim(values[0]) == 0:
        return values
    try:
        return np.stack([np.asarray(cell) for cell in values])
    except ValueError as exc:
        raise _conversion_error(spec, where, f"its cells differ in shape ({exc})") from None


def _cast(values: Any, spec: TensorSpec, where: str) -> np.ndarray:
    """``values`` as an array of ``spec``'s dtype (as given for strings and dtypes numpy lacks)."""
    dtype = spec.numpy_dtype
    try:
        array = np.asarray(values)
        if dtype is None or dtype == np.dtype(object) or array.dtype == dtype:
            return array
        if dtype.kind in "iub" and array.dtype.kind == "f" and np.isnan(array).any():
            problem = "it has missing values (NaN)"
        else:
            return array.astype(dtype)
    except (TypeError, ValueError) as exc:
        problem = str(exc)
    raise _conversion_error(spec, where, problem)


def _conversion_error(spec: TensorSpec, where: str, problem: str) -> InvalidArgumentError:
    return InvalidArgumentError(
        f"{where} input {spec.alias!r} ({spec.describe()}): cannot convert the values: {problem}"
    )
