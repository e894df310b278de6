"""Data sets that load in a blink: scikit-learn's digits and diabetes, and user CSV files."""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from nntui.data.bundle import DataError
from nntui.data.prepare import RawData

_DELIMITERS = ",;\t|"


def load_digits() -> RawData:
    """scikit-learn's 8x8 digits as (N, 1, 8, 8) images in [0, 1], 10 classes."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = torch.from_numpy(bunch.images.astype(np.float32) / 16.0).unsqueeze(1)
    labels = torch.from_numpy(bunch.target.astype(np.int64))
    return RawData(images, labels, tuple(str(name) for name in bunch.target_names), is_image=True)


def load_diabetes() -> RawData:
    """scikit-learn's diabetes: 10 raw features, the disease progression target in raw units (N, 1)."""
    from sklearn.datasets import load_diabetes as sklearn_diabetes

    # scaled=False: scikit-learn's own scaling uses every sample; ours uses the training split only
    bunch = sklearn_diabetes(scaled=False)
    features = torch.from_numpy(bunch.data.astype(np.float32))
    target = torch.from_numpy(bunch.target.astype(np.float32)).unsqueeze(1)
    return RawData(features, target, (), is_image=False)


def load_csv(path: str, target: str, task: str) -> RawData:
    """A CSV file of numeric columns; the target is the column `target`, or else the last one.

    The first row is a header unless every cell of it is a number. For classification the
    target values become class indices in sorted order (numeric order when all are numbers);
    numbers that are not whole are refused there (a regression target given the wrong task).
    Every problem is a one-line DataError naming the file, and the line and column of a bad cell.
    """
    table = _read_table(Path(path).expanduser())
    target_index = _target_index(table.header, target, path)
    feature_columns = [i for i in range(len(table.header)) if i != target_index]
    if not feature_columns:
        raise DataError(f"csv {path}: no feature columns besides the target {table.header[target_index]!r}")
    x = torch.from_numpy(_numeric_matrix(table, feature_columns, path))
    if task == "regression":
        values = _numeric_matrix(table, [target_index], path, role="target column",
                                 hint="; task regression needs a number (class labels need task classification)")
        return RawData(x, torch.from_numpy(values), (), is_image=False)
    labels = [row[target_index].strip() for row in table.rows]
    class_names, indices = _class_indices(labels, table, table.header[target_index], path)
    return RawData(x, torch.tensor(indices, dtype=torch.int64), class_names, is_image=False)


@dataclass
class _Table:
    """The cells of a CSV file as text, with the file line each data row ends on (for messages)."""

    header: list[str]
    rows: list[list[str]]
    lines: list[int]


def _read_table(path: Path) -> _Table:
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DataError(f"csv {path}: no such file") from None
    except (OSError, UnicodeDecodeError) as error:
        raise DataError(f"csv {path}: cannot read: {error}") from None
    try:
        dialect = csv.Sniffer().sniff(text[:8192], delimiters=_DELIMITERS)
        delimiter = dialect.delimiter
    except csv.Error:
        delimiter = ","
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=delimiter)
    try:
        numbered = [(row, reader.line_num) for row in reader if any(cell.strip() for cell in row)]
    except csv.Error as error:
        raise DataError(f"csv {path}: line {reader.line_num}: {error}") from None
    if not numbered:
        raise DataError(f"csv {path}: the file is empty")
    if all(_is_number(cell) for cell in numbered[0][0]):
        header = [f"column{i + 1}" for i in range(len(numbered[0][0]))]
    else:
        header, numbered = [cell.strip() for cell in numbered[0][0]], numbered[1:]
    for row, line in numbered:
        if len(row) != len(header):
            raise DataError(f"csv {path}: line {line} has {len(row)} cells, expected {len(header)}")
    if len(numbered) < 2:
        raise DataError(f"csv {path}: needs at least 2 data rows, found {len(numbered)}")
    return _Table(header, [row for row, _ in numbered], [line for _, line in numbered])


def _target_index(header: list[str], target: str, path: str) -> int:
    if not target:
        return len(header) - 1
    if target in header:
        return header.index(target)
    raise DataError(f"csv {path}: no column {target!r}; columns: {', '.join(header)}")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _numeric_matrix(table: _Table, columns: list[int], path: str, role: str = "column", hint: str = "") -> np.ndarray:
    matrix = np.empty((len(table.rows), len(columns)), dtype=np.float32)
    for r, row in enumerate(table.rows):
        for c, column in enumerate(columns):
            cell = row[column].strip()
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                what = "a finite number" if _is_number(cell) else "a number"
                raise DataError(f"csv {path}: line {table.lines[r]}, {role} {table.header[column]!r}: "
                                f"{cell!r} is not {what}{hint}")
            matrix[r, c] = value
    return matrix


MANY_CLASSES = 20  # more numeric classes than this, and than half the rows, look like a measured value


def _class_indices(labels: list[str], table: _Table, column: str, path: str) -> tuple[tuple[str, ...], list[int]]:
    if all(_is_number(label) for label in labels):
        _check_numeric_classes(labels, table, column, path)
        by_value = {float(label): label for label in reversed(labels)}  # the first spelling wins
        ordered = sorted(by_value)
        names = tuple(by_value[value] for value in ordered)
        lookup = {value: index for index, value in enumerate(ordered)}
        indices = [lookup[float(label)] for label in labels]
    else:
        names = tuple(sorted(set(labels)))
        lookup_name = {name: index for index, name in enumerate(names)}
        indices = [lookup_name[label] for label in labels]
    if len(names) < 2:
        raise DataError(f"csv {path}: the target has a single class {names[0]!r}; classification needs 2 or more")
    return names, indices


def _check_numeric_classes(labels: list[str], table: _Table, column: str, path: str) -> None:
    """Numbers as class labels must be whole, and not nearly one class per row (a regression target)."""
    hint = "task classification needs class labels (a measured value needs task regression)"
    fraction = next((r for r, label in enumerate(labels) if not float(label).is_integer()), None)
    if fraction is not None:
        raise DataError(f"csv {path}: line {table.lines[fraction]}, target column {column!r}: "
                        f"{labels[fraction]!r} is not a class label; {hint}")
    classes = len({float(label) for label in labels})
    if classes > MANY_CLASSES and classes > len(labels) / 2:
        raise DataError(f"csv {path}: target column {column!r} has {classes} different numbers in "
                        f"{len(labels)} rows; {hint}")
