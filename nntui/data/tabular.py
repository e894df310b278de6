"""Data sets that load in a blink: scikit-learn's digits and diabetes, and user CSV files."""

from __future__ import annotations

import csv
import math
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
    target values become class indices in sorted order (numeric order when all are numbers).
    """
    header, rows = _read_rows(Path(path).expanduser())
    target_index = _target_index(header, target, path)
    features = _numeric_matrix(rows, [i for i in range(len(header)) if i != target_index], header, path)
    if features.shape[1] == 0:
        raise DataError(f"csv {path}: no feature columns besides the target {header[target_index]!r}")
    labels = [row[target_index].strip() for row in rows]
    x = torch.from_numpy(features)
    if task == "regression":
        values = _numeric_matrix(rows, [target_index], header, path)
        return RawData(x, torch.from_numpy(values), (), is_image=False)
    class_names, indices = _class_indices(labels, path)
    return RawData(x, torch.tensor(indices, dtype=torch.int64), class_names, is_image=False)


def _read_rows(path: Path) -> tuple[list[str], list[list[str]]]:
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
    rows = [row for row in csv.reader(text.splitlines(), delimiter=delimiter) if any(cell.strip() for cell in row)]
    if not rows:
        raise DataError(f"csv {path}: the file is empty")
    if all(_is_number(cell) for cell in rows[0]):
        header = [f"column{i + 1}" for i in range(len(rows[0]))]
    else:
        header, rows = [cell.strip() for cell in rows[0]], rows[1:]
    for number, row in enumerate(rows, start=1):
        if len(row) != len(header):
            raise DataError(f"csv {path}: data row {number} has {len(row)} cells, expected {len(header)}")
    if len(rows) < 2:
        raise DataError(f"csv {path}: needs at least 2 data rows, found {len(rows)}")
    return header, rows


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


def _numeric_matrix(rows: list[list[str]], columns: list[int], header: list[str], path: str) -> np.ndarray:
    matrix = np.empty((len(rows), len(columns)), dtype=np.float32)
    for r, row in enumerate(rows):
        for c, column in enumerate(columns):
            cell = row[column].strip()
            try:
                value = float(cell)
            except ValueError:
                value = math.nan
            if not math.isfinite(value):
                raise DataError(f"csv {path}: column {header[column]!r}, data row {r + 1}: "
                                f"{cell!r} is not a finite number")
            matrix[r, c] = value
    return matrix


def _class_indices(labels: list[str], path: str) -> tuple[tuple[str, ...], list[int]]:
    if all(_is_number(label) for label in labels):
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
