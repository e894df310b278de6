"""The user's own model and data in a preset: `model.factory` / `data.factory` imported and called.

A factory is `package.module:callable` (imported as Python would, the current directory
searched last) or `path/to/file.py:callable` (loaded from that file, its folder on `sys.path`
while it loads, so that its sibling modules import). Every problem is a `FactoryError` whose
text is one line naming the preset key. torch is imported only inside the functions.
"""

from __future__ import annotations

import contextlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from nntui.config_sections import factory_file

if TYPE_CHECKING:
    from torch import Tensor, nn

MODEL_KEY, DATA_KEY = "model.factory", "data.factory"


class FactoryError(ValueError):
    """A factory that cannot be imported or called, or returned what does not fit. One line."""


def _one_line(error: BaseException) -> str:
    from nntui.engine.failures import one_line

    return one_line(error)[:300]


def load_factory(spec: str, key: str) -> Callable[..., Any]:
    """The callable that `spec` names (`module:attr` or `file.py:attr`; attr may be dotted)."""
    target, _, attribute = spec.rpartition(":")
    file = factory_file(spec)
    module = _load_file(file, key) if file is not None else _import_module(target, key)
    found: Any = module
    for part in attribute.split("."):
        try:
            found = getattr(found, part)
        except AttributeError:
            raise FactoryError(f"{key}: {target} has no {attribute!r}") from None
    if not callable(found):
        raise FactoryError(f"{key}: {target}:{attribute} is not callable (it is a {type(found).__name__})")
    return found


def call_factory(spec: str, args: dict[str, Any], key: str) -> Any:
    """Import the factory `spec` and call it with `args` as keyword arguments."""
    factory = load_factory(spec, key)
    try:
        return factory(**args)
    except (Exception, SystemExit) as error:  # the user's code: whatever it raises is said in one line
        raise FactoryError(f"{key}: {spec.rpartition(':')[2]}(...) raised {_one_line(error)}") from None


def _import_module(name: str, key: str) -> ModuleType:
    with _on_sys_path(os.getcwd(), first=False):  # like `python -m`, without shadowing installed modules
        try:
            return importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name is not None and name.startswith(error.name):
                raise FactoryError(f"{key}: no module named {error.name!r} (install it, add its folder to "
                                   f"PYTHONPATH, or name a file: path/to/file.py:callable)") from None
            raise FactoryError(f"{key}: cannot import {name}: {_one_line(error)}") from None
        except (Exception, SystemExit) as error:
            raise FactoryError(f"{key}: cannot import {name}: {_one_line(error)}") from None


def _load_file(path: Path, key: str) -> ModuleType:
    if not path.is_file():
        raise FactoryError(f"{key}: no such file {path}")
    name = _module_name(path)
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise FactoryError(f"{key}: cannot load {path} as Python")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # pickling of its classes (DataLoader workers) finds the module
    with _on_sys_path(str(path.parent), first=True):
        try:
            spec.loader.exec_module(module)
        except (Exception, SystemExit) as error:
            del sys.modules[name]
            raise FactoryError(f"{key}: cannot import {path}: {_one_line(error)}") from None
    return module


def _module_name(path: Path) -> str:
    """The file's stem as its module's name, as a script's siblings would import it, unless taken."""
    name = re.sub(r"\W", "_", path.stem)
    return name if name.isidentifier() and name not in sys.modules else f"nntui_factory_{len(sys.modules)}_{name}"


@contextlib.contextmanager
def _on_sys_path(folder: str, first: bool) -> Iterator[None]:
    """`folder` on sys.path for the block (unless it is there already)."""
    if folder in sys.path:
        yield
        return
    if first:
        sys.path.insert(0, folder)
    else:
        sys.path.append(folder)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(folder)


# --------------------------------------------------------------------------- the model


def build_custom_model(spec: str, args: dict[str, Any]) -> "nn.Module":
    """The model `model.factory` returns; it must be a `torch.nn.Module`."""
    from torch import nn

    model = call_factory(spec, args, MODEL_KEY)
    if not isinstance(model, nn.Module):
        raise FactoryError(f"{MODEL_KEY}: {spec.rpartition(':')[2]}(...) returned a {type(model).__name__}, "
                           f"not a torch.nn.Module")
    return model


def check_model_outputs(model: "nn.Module", inputs: "Tensor", task: str, num_classes: int) -> None:
    """One forward pass on a few training samples: the outputs must fit the task's loss.

    Classification needs (batch, classes) logits with at least as many classes as the targets
    have; regression (batch,) or (batch, 1), the former then reshaped to a column by a hook,
    as the targets are. Run in eval mode without gradients, so that batch norm statistics and
    the random state of dropout are left as they were.
    """
    import torch

    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            outputs = model(inputs)
    except Exception as error:  # noqa: BLE001 -- the user's model: its error in one line
        raise FactoryError(f"{MODEL_KEY}: the model fails on a batch of the training data (inputs of shape "
                           f"{tuple(inputs.shape)}): {_one_line(error)}") from None
    finally:
        model.train(was_training)
    batch = inputs.shape[0]
    if not isinstance(outputs, torch.Tensor) or not outputs.is_floating_point():
        raise FactoryError(f"{MODEL_KEY}: the model returned a {_kind(outputs)} for a batch; "
                           f"the loss needs a tensor of floats")
    shape = tuple(outputs.shape)
    if task == "classification":
        if len(shape) != 2 or shape[0] != batch or shape[1] < num_classes:
            raise FactoryError(f"{MODEL_KEY}: classification needs outputs (batch, classes) with classes >= "
                               f"{num_classes} (the targets' classes); the model returned {shape} "
                               f"for a batch of {batch}")
    elif shape == (batch,):
        model.register_forward_hook(_as_column)
    elif shape != (batch, 1):
        raise FactoryError(f"{MODEL_KEY}: regression needs outputs (batch,) or (batch, 1); the model "
                           f"returned {shape} for a batch of {batch}")


def _as_column(_module: Any, _inputs: Any, outputs: "Tensor") -> "Tensor":
    return outputs.unsqueeze(1)


def _kind(value: Any) -> str:
    return f"{type(value).__name__} of {value.dtype}" if hasattr(value, "dtype") else type(value).__name__
