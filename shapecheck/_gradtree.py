"""Parameter structures for the gradient check: leaves, their names, private copies, gradient lookup.

A parameter structure is a dict (name -> array), or nested dicts, lists and
tuples whose leaves are float arrays (a Python or numpy float is a 0-d leaf).
Everything here is pure over plain data: nothing is evaluated, nothing of the
user's is written to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np


class ParameterTypeError(TypeError):
    """A parameter leaf that finite differences cannot perturb (integers, strings, complex numbers)."""


@dataclass(frozen=True)
class Leaf:
    """One parameter array: where it sits in the structure and what it is."""

    path: tuple  # keys and indices from the root, e.g. ("layers", 0, "W")
    name: str  # the same path as people write it: "layers[0].W"
    value: Any  # the user's object; read, never written
    scalar: bool  # a Python/numpy float rather than an array: handed back to loss as np.float64/np.float32


def path_name(path: tuple) -> str:
    """Write a path as Python would reach it: ``W1``, ``layers[0].W``, ``[1]``, ``['W 1']``."""
    out = ""
    for key in path:
        if isinstance(key, int):
            out += f"[{key}]"
        elif isinstance(key, str) and key.isidentifier():
            out += f".{key}" if out else key
        else:
            out += f"[{key!r}]"
    return out


def grad_labels(name: str, found: str | None, path: tuple | None) -> tuple[str, str]:
    """How the diagnosis names a gradient: in prose ("dW1", "the gradient of W1") and in code.

    A deeplearning.ai key such as ``dW1`` is the user's own name for it; a
    key equal to the parameter's would read as the parameter itself.
    """
    if found is not None and found != name and path is not None and len(path) == 1 and found.isidentifier():
        return found, found
    code = "grads" + "".join(f"[{k!r}]" for k in (path or ()))
    return f"the gradient of {name}", code


def _describe(value: Any) -> str:
    if isinstance(value, np.ndarray):
        return f"an array of dtype {value.dtype}"
    return f"a {type(value).__name__}"


def _check_leaf(path: tuple, value: Any) -> Leaf:
    name = path_name(path) or "params"
    if isinstance(value, (bool, np.bool_)) or (isinstance(value, np.ndarray) and value.dtype == bool):
        raise ParameterTypeError(
            f"{name} holds booleans: finite differences need floats; use .astype(float) if it is a parameter"
        )
    if isinstance(value, np.ndarray) and type(value) is not np.ndarray and not isinstance(value, np.memmap):
        raise ParameterTypeError(_subclass_message(name, value))
    if isinstance(value, np.ndarray):
        if np.issubdtype(value.dtype, np.integer):
            raise ParameterTypeError(
                f"{name} holds integers ({value.dtype}): finite differences need floats; use {name}.astype(float)"
            )
        if not np.issubdtype(value.dtype, np.floating):
            raise ParameterTypeError(
                f"{name} has dtype {value.dtype}: gradcheck checks real float arrays only"
            )
        return Leaf(path, name, value, scalar=False)
    if isinstance(value, (float, np.floating)):
        return Leaf(path, name, value, scalar=True)
    if isinstance(value, (int, np.integer)):
        raise ParameterTypeError(
            f"{name} is an integer ({value!r}): finite differences need floats; write {float(value)!r}"
        )
    raise ParameterTypeError(
        f"{name} is {_describe(value)}: params must hold only float arrays "
        "(dicts, lists and tuples of them); keep settings out of params"
    )


def _subclass_message(name: str, value: np.ndarray) -> str:
    # A private copy as a plain ndarray would change what the loss computes (np.matrix's * is a
    # matmul, a masked array's mask would be dropped): refused rather than silently converted.
    if isinstance(value, np.ma.MaskedArray):
        return (f"{name} is a masked array: gradcheck perturbs plain float arrays and would drop its mask; "
                f"pass {name}.filled(0) (or .data) and apply the mask inside the loss")
    if isinstance(value, np.matrix):
        return (f"{name} is a numpy.matrix (its * is a matrix product): gradcheck needs plain arrays; "
                f"pass np.asarray({name}) and write the loss with @")
    return (f"{name} is a {type(value).__module__}.{type(value).__name__} (an ndarray subclass): gradcheck "
            f"needs plain float arrays; pass np.asarray({name})")


def leaves(params: Any) -> list[Leaf]:
    """The float leaves of ``params`` in the order given (dict insertion order), or ParameterTypeError."""
    found: list[Leaf] = []

    def walk(node: Any, path: tuple) -> None:
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, path + (key,))
        elif isinstance(node, (list, tuple)):
            for i, child in enumerate(node):
                walk(child, path + (i,))
        else:
            found.append(_check_leaf(path, node))

    if not isinstance(params, (dict, list, tuple, np.ndarray, float, np.floating)):
        raise ParameterTypeError(
            f"params is {_describe(params)}: pass a dict of name -> float array (nested dicts, lists and tuples too)"
        )
    walk(params, ())
    return found


def private_copy(params: Any) -> tuple[Any, list[np.ndarray]]:
    """A structure shaped like ``params`` with fresh containers and fresh arrays, plus its leaf arrays.

    The loss only ever sees this copy, so the user's arrays stay bit-identical
    whatever the loss does or raises. Float leaves become 0-d arrays here and
    are handed to the loss as numpy scalars (see ``materialise``).
    """
    arrays: list[np.ndarray] = []

    def fresh(leaf: Any) -> np.ndarray:
        # np.array keeps a numpy float's dtype and makes a Python float float64;
        # C order so that a flat view of it writes through.
        arr = np.array(leaf, copy=True, order="C")
        arrays.append(arr)
        return arr

    return map_leaves(params, fresh), arrays


def materialise(copy: Any, scalar_flags: list[bool]) -> Any:
    """The structure handed to the loss: the private arrays, with scalar leaves as numpy floats.

    Tuples are rebuilt (they are immutable, so a scalar leaf inside one must be
    swapped in a new tuple); when there are no scalar leaves the copy itself is
    returned and no allocation happens per evaluation.
    """
    if not any(scalar_flags):
        return copy
    it = iter(scalar_flags)
    return map_leaves(copy, lambda leaf: leaf.dtype.type(leaf[()]) if next(it) else leaf)


def map_leaves(node: Any, fn: Any) -> Any:
    """A structure shaped like ``node`` (new dicts, lists and tuples) with ``fn`` applied to each leaf,
    in the order the leaves are listed."""
    if isinstance(node, dict):
        return {key: map_leaves(child, fn) for key, child in node.items()}
    if isinstance(node, (list, tuple)):
        items = [map_leaves(child, fn) for child in node]
        if isinstance(node, list):
            return items
        # A namedtuple (or another tuple subclass built from its fields) keeps its type: p.W must work.
        return type(node)(*items) if _is_namedtuple(node) else tuple(items)
    return fn(node)


@dataclass(frozen=True)
class GradLookup:
    """The analytic gradient found for each leaf (None when missing) and what grads held besides."""

    values: list[Any]
    found_as: list[str | None]  # the key actually used, e.g. "dW1" for W1 in the deeplearning.ai style
    paths: list[tuple | None]  # the same as a path of keys and indices
    unused: list[str]  # entries of grads that no parameter claimed, by path name


def lookup_grads(grads: Any, params_leaves: list[Leaf]) -> GradLookup:
    """Find, for every parameter leaf, the matching entry of ``grads``.

    A dict key ``k`` is looked up as ``k`` and then as ``"d" + k``, so the
    deeplearning.ai convention (``parameters["W1"]``, ``grads["dW1"]``, plus
    entries such as ``grads["dA1"]``) works unchanged; entries left over are
    reported as unused, never an error.
    """
    values: list[Any] = []
    found_as: list[str | None] = []
    paths: list[tuple | None] = []
    used: set[tuple] = set()
    for leaf in params_leaves:
        node: Any = grads
        gpath: tuple = ()
        for key in leaf.path:
            if isinstance(node, dict):
                if key in node:
                    pass
                elif isinstance(key, str) and "d" + key in node:
                    key = "d" + key
                else:
                    node = None
                    break
                node = node[key]
            elif isinstance(node, (list, tuple)) and isinstance(key, int) and key < len(node):
                node = node[key]
            else:
                node = None
                break
            gpath += (key,)
        values.append(node)
        found_as.append(path_name(gpath) if node is not None else None)
        paths.append(gpath if node is not None else None)
        if node is not None:
            used.add(gpath)

    unused: list[str] = []

    def walk(node: Any, path: tuple) -> None:
        if path in used:
            return
        if isinstance(node, dict):
            for key, child in node.items():
                walk(child, path + (key,))
        elif isinstance(node, (list, tuple)) and not _is_numeric_sequence(node):
            for i, child in enumerate(node):
                walk(child, path + (i,))
        elif not any(u[: len(path)] == path for u in used):
            unused.append(path_name(path) or "grads")

    walk(grads, ())
    return GradLookup(values, found_as, paths, unused)


def _is_numeric_sequence(node: Any) -> bool:
    # A list of numbers standing for a gradient array, not a container of gradients.
    return bool(node) and all(isinstance(x, (int, float, np.number)) for x in node)


def _is_namedtuple(node: Any) -> bool:
    return isinstance(node, tuple) and type(node) is not tuple and isinstance(getattr(type(node), "_fields", None), tuple)
