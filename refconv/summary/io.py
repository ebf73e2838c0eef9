"""Networks from TOML or JSON: safe parsing, errors that name the layer and the field.

A file holds a ``name``, an optional default ``input`` shape ``[C, H, W]`` and
a list ``layers``; each layer is a table with a ``type`` (a key of
:data:`~refconv.summary.layers.LAYER_TYPES`) and the fields of its class.
Containers nest: ``sequential`` has ``layers``; ``concat`` has ``branches``,
each a layer or a list of layers; ``residual`` has ``body`` and optionally
``shortcut``; ``side_output`` has ``head``.  Parsing is data only (``json``,
``tomllib``), nothing is evaluated.

.. code-block:: toml

    name = "lenet"
    input = [1, 32, 32]

    [[layers]]
    type = "conv"
    out_channels = 6
    kernel_size = 5

    [[layers]]
    type = "maxpool"
    kernel_size = 2

Examples
--------
>>> net = loads('{"name": "tiny", "input": [1, 8, 8], "layers": [{"type": "conv", "out_channels": 4, "kernel_size": 3}]}')
>>> net.output_shape(), net.num_params()
((4, 6, 6), 40)
>>> loads('{"layers": [{"type": "relu"}, {"type": "conv", "out_channels": 4, "kernal_size": 3}]}')
Traceback (most recent call last):
    ...
refconv.params.ConvParamError: layers[1] (conv): unknown field 'kernal_size'; conv fields are bias, dilation, groups, in_channels, kernel_size, name, out_channels, padding, stride
>>> network_to_json(net) == network_to_json(loads(network_to_json(net)))
True
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import sys
from pathlib import Path
from typing import Any, Union

from ..atomic import atomic_write
from ..params import ConvParamError
from .layers import LAYER_TYPES, Layer, Sequential
from .zoo import Network

__all__ = ["load", "loads", "load_toml", "from_dict", "layer_from_dict", "network_to_dict", "network_to_json", "save"]

#: files larger than this are refused (a network description is a few kilobytes)
MAX_BYTES = 10 * 2**20
#: integers in a network file lie in [-MAX_INT, MAX_INT] (no tensor library has larger sizes)
MAX_INT = 2**63 - 1
#: lists in a field nest at most this deep (per-axis values holding (lo, hi) pairs)
MAX_LIST_DEPTH = 2


class _LongInt(str):
    """The digits of a JSON integer too long to be a size (kept as text, never converted)."""


def _parse_int(text: str) -> Any:
    # json's parse_int hook: int() of thousands of digits fails (or takes quadratic time)
    return int(text) if len(text.lstrip("-")) <= 20 else _LongInt(text)


def _short(value: Any) -> str:
    """``value`` for a one-line message (a long integer by its digit count)."""
    if isinstance(value, _LongInt):
        return f"<an integer of {len(value.lstrip('-'))} digits>"
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _check_values(where: str, value: Any) -> None:
    """Every number inside ``value`` (at path ``where``) within range, every float finite.

    Iterative, so that a deeply nested file is an error, not a RecursionError.
    The message names the path (``layers[3].out_channels``) and the value.
    """
    todo = [(where, value)]
    while todo:
        path, v = todo.pop()
        if isinstance(v, _LongInt) or (isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT):
            raise ConvParamError(f"{path}={_short(v)}: out of range; integers in a network file lie within +-(2**63 - 1)")
        if isinstance(v, float) and not math.isfinite(v):
            raise ConvParamError(f"{path}={v!r}: must be a finite number")
        if isinstance(v, dict):
            todo.extend((f"{path}.{k}" if path else str(k), x) for k, x in v.items())
        elif isinstance(v, list):
            todo.extend((f"{path}[{i}]", x) for i, x in enumerate(v))

_NESTED = {"layers": "list", "branches": "branches", "body": "layer", "shortcut": "layer", "head": "layer"}


def _layers(where: str, value: Any) -> list[Layer]:
    if not isinstance(value, list):
        raise ConvParamError(f"{where}={value!r}: expected a list of layer tables")
    return [layer_from_dict(v, f"{where}[{i}]") for i, v in enumerate(value)]


def _one_or_many(where: str, value: Any) -> Layer:
    # a branch / body / shortcut / head: one layer table, or a list of them (a sequential)
    if isinstance(value, list):
        return Sequential(_layers(where, value))
    return layer_from_dict(value, where)


def layer_from_dict(spec: Any, where: str = "layer") -> Layer:
    """One layer description from its table; ``where`` names it in errors.

    >>> layer_from_dict({"type": "maxpool", "kernel_size": 3, "stride": 2, "ceil_mode": True})
    MaxPool(name='', kernel_size=3, stride=2, padding=0, ceil_mode=True, dilation=1)
    >>> layer_from_dict({"type": "conv", "out_channels": 4, "kernel_size": 3, "stride": 0}, "layers[2]")
    Traceback (most recent call last):
        ...
    refconv.params.ConvParamError: layers[2] (conv): Conv.stride=0: must be an integer >= 1 or one such integer per spatial axis
    """
    if not isinstance(spec, dict):
        raise ConvParamError(f"{where}={_short(spec)}: expected a table with a 'type' key")
    kind = spec.get("type")
    if not isinstance(kind, str) or kind not in LAYER_TYPES:
        raise ConvParamError(f"{where}: unknown type {_short(kind)}; types are {', '.join(LAYER_TYPES)}")
    cls = LAYER_TYPES[kind]
    fields = {f.name: f for f in dataclasses.fields(cls)}
    where_kind = f"{where} ({kind})"
    kwargs: dict[str, Any] = {}
    for key, value in spec.items():
        if key == "type":
            continue
        if key not in fields:
            raise ConvParamError(f"{where_kind}: unknown field {_short(key)}; {kind} fields are {', '.join(sorted(fields))}")
        nested = _NESTED.get(key)
        if nested is None:
            _check_field(where_kind, key, value)
        if nested == "list":
            value = _layers(f"{where}.{key}", value)
        elif nested == "branches":
            if not isinstance(value, list):
                raise ConvParamError(f"{where_kind}.branches={value!r}: expected a list of branches")
            value = [_one_or_many(f"{where}.branches[{i}]", b) for i, b in enumerate(value)]
        elif nested == "layer" and value is not None:
            value = _one_or_many(f"{where}.{key}", value)
        elif isinstance(value, list):
            # per-axis values and (lo, hi) pairs arrive as lists
            value = tuple(tuple(v) if isinstance(v, list) else v for v in value)
        kwargs[key] = value
    missing = [
        n for n, f in fields.items()
        if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and n not in kwargs
    ]
    if missing:
        raise ConvParamError(f"{where_kind}: missing field {', '.join(map(repr, missing))}")
    try:
        return cls(**kwargs)
    except ConvParamError as exc:
        if str(exc).startswith(f"{where}"):
            raise
        raise ConvParamError(f"{where_kind}: {exc}") from None
    except TypeError as exc:  # a value of a wrong kind reaching a comparison
        raise ConvParamError(f"{where_kind}: {exc}") from None


def _check_field(where_kind: str, key: str, value: Any) -> None:
    """A field holds a number, a string, a boolean, None, or lists of them (per-axis values, (lo, hi) pairs)."""
    todo = [(value, 0)]
    while todo:
        v, depth = todo.pop()
        if isinstance(v, list):
            if depth >= MAX_LIST_DEPTH:
                raise ConvParamError(f"{where_kind}.{key}={_short(value)}: lists nest at most {MAX_LIST_DEPTH} deep")
            todo.extend((x, depth + 1) for x in v)
        elif not (v is None or isinstance(v, (bool, int, float, str))) or isinstance(v, _LongInt):
            raise ConvParamError(
                f"{where_kind}.{key}={_short(value)}: expected a number, a string, a boolean or a list of them"
            )


def from_dict(data: Any, *, default_name: str = "network") -> Network:
    """A :class:`~refconv.summary.zoo.Network` from the parsed top-level table."""
    if not isinstance(data, dict):
        raise ConvParamError(f"network file: expected a table with 'layers', got {type(data).__name__}")
    unknown = set(data) - {"name", "input", "layers", "description"}
    if unknown:
        raise ConvParamError(f"network file: unknown key(s) {sorted(unknown)}; keys are name, input, layers, description")
    if "layers" not in data:
        raise ConvParamError("network file: missing 'layers' (a list of layer tables)")
    _check_values("", data)
    name = data.get("name", default_name)
    if not isinstance(name, str):
        raise ConvParamError(f"name={name!r}: must be a string")
    shape = data.get("input")
    if shape is not None and (
        not isinstance(shape, list) or len(shape) < 1
        or not all(isinstance(v, int) and not isinstance(v, bool) and v >= 1 for v in shape)
    ):
        raise ConvParamError(f"input={shape!r}: expected a list [C, *spatial] of integers >= 1")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConvParamError(f"description={description!r}: must be a string")
    try:
        layers = _layers("layers", data["layers"])
    except RecursionError:
        raise ConvParamError("layers: nested too deeply") from None
    return Network(name, Sequential(layers), tuple(shape) if shape else None, description)


def loads(text: str, fmt: str = "json", *, default_name: str = "network") -> Network:
    """A network from JSON or TOML text (``fmt`` is ``'json'`` or ``'toml'``)."""
    if fmt == "json":
        try:
            data = json.loads(text, parse_int=_parse_int)
        except (json.JSONDecodeError, RecursionError) as exc:
            raise ConvParamError(f"invalid JSON: {exc}") from None
    elif fmt == "toml":
        data = _toml_loads(text)
    else:
        raise ConvParamError(f"fmt={fmt!r}: formats are 'json', 'toml'")
    return from_dict(data, default_name=default_name)


def _toml_module() -> Any:
    """``tomllib`` on Python >= 3.11, else ``tomli`` (the same parser, declared as a dependency there)."""
    if sys.version_info >= (3, 11):
        import tomllib

        return tomllib
    try:  # pragma: no cover - Python 3.10
        import tomli
    except ImportError:  # pragma: no cover - an install that skipped the dependency
        raise ConvParamError(
            "reading TOML needs Python >= 3.11 or the 'tomli' package (pip install tomli); JSON files work without it"
        ) from None
    return tomli  # pragma: no cover


def _toml_loads(text: str) -> Any:
    tomllib = _toml_module()
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConvParamError(f"invalid TOML: {exc}") from None
    except ValueError:  # int() refuses thousands of digits before any layer can be named
        raise ConvParamError(
            "invalid TOML: an integer with thousands of digits; integers in a network file lie within +-(2**63 - 1)"
        ) from None
    except RecursionError:
        raise ConvParamError("invalid TOML: nested too deeply") from None


def load(path: Union[str, os.PathLike]) -> Network:
    """A network from a ``.toml`` or ``.json`` file; the file name is the default network name."""
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix not in (".toml", ".json"):
        raise ConvParamError(f"file={str(path)!r}: network files end in .toml or .json")
    try:
        size = p.stat().st_size
        if size > MAX_BYTES:
            raise ConvParamError(f"file={str(path)!r}: {size} bytes, larger than the {MAX_BYTES}-byte limit")
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConvParamError(f"file={str(path)!r}: cannot read it ({exc.strerror or exc})") from None
    except UnicodeDecodeError:
        raise ConvParamError(f"file={str(path)!r}: not UTF-8 text") from None
    try:
        return loads(text, suffix[1:], default_name=p.stem)
    except ConvParamError as exc:
        raise ConvParamError(f"{p.name}: {exc}") from None


load_toml = load


def network_to_dict(net: Network) -> dict[str, Any]:
    """The file form of ``net`` (JSON-ready); :func:`from_dict` reads it back."""
    out: dict[str, Any] = {"name": net.name}
    if net.input_shape is not None:
        out["input"] = [int(v) for v in net.input_shape]
    if net.description:
        out["description"] = net.description
    out["layers"] = [layer.to_dict() for layer in net.layers.layers]
    return out


def network_to_json(net: Network) -> str:
    """``net`` as JSON text."""
    return json.dumps(network_to_dict(net), indent=1) + "\n"


def save(net: Network, path: Union[str, os.PathLike]) -> None:
    """Write ``net`` as JSON, atomically (a temporary file in the same folder, then a rename)."""
    atomic_write(path, network_to_json(net))
