"""Built-in adapters: thin argument translators from the canonical signatures to other libraries.

Each adapter module defines ``make() -> Target``; it imports its library only
when a function is first requested, so listing adapters costs nothing.  An
adapter whose library is not installed is refused when it is requested, with
the extra that installs it.

Named variants of an adapter (``torch.channels_last``, ``onnxruntime.opset11``
...) exercise other API paths of the same library; each is a target of its own.
The torch, jax, tensorflow and openvino adapters also run on another device
named after a colon (``torch:cuda``, ``jax:gpu``, ``tensorflow:gpu``,
``openvino:gpu``); the plain name is the CPU.

>>> FAMILIES
('torch', 'onnxruntime', 'jax', 'scipy', 'numpy', 'refconv.fast', 'refconv.oracle', 'tensorflow', 'tinygrad', 'openvino', 'onnxruntime.quantized', 'torch.quantized', 'tflite.quantized')
>>> [name for name in ADAPTERS if name.startswith('torch') and 'quantized' not in name]
['torch', 'torch.strings', 'torch.channels_last']
>>> LIBRARIES['onnxruntime']
(('onnxruntime', 'onnx'), 'onnx')
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import Any

from ..targets import Target, TargetError

#: adapter family -> its module (in this package)
_MODULES = {
    "torch": "torch_adapter",
    "onnxruntime": "onnx_adapter",
    "jax": "jax_adapter",
    "scipy": "scipy_adapter",
    "numpy": "numpy_adapter",
    "refconv.fast": "refconv_adapter",
    "refconv.oracle": "refconv_adapter",
    "tensorflow": "tensorflow_adapter",
    "tinygrad": "tinygrad_adapter",
    "openvino": "openvino_adapter",
    "onnxruntime.quantized": "onnx_quantized",   # ConvInteger, QLinearConv
    "torch.quantized": "torch_quantized",        # torch.ao.nn.quantized.functional, one target per engine
    "tflite.quantized": "tflite_quantized",      # TFLite int8 CONV_2D, reference kernels
}
FAMILIES = tuple(_MODULES)


def _variants(family: str) -> tuple[str, ...]:
    # an adapter module lists its named variants in VARIANTS (its family name first); importing it is cheap:
    # the library itself is imported only when a function is called
    mod = importlib.import_module(f".{_MODULES[family]}", __name__)
    return tuple(getattr(mod, "VARIANTS", (family,))) if family != "refconv.oracle" else (family,)


#: every adapter name (variants included) -> its module
ADAPTERS = {name: _MODULES[family] for family in FAMILIES for name in _variants(family)}

#: adapter family -> (modules it imports, the refconv extra that installs them)
LIBRARIES = {
    "torch": (("torch",), "torch"),
    "onnxruntime": (("onnxruntime", "onnx"), "onnx"),
    "jax": (("jax", "jaxlib"), "jax"),
    "tensorflow": (("tensorflow",), "tensorflow"),
    "tinygrad": (("tinygrad",), "tinygrad"),
    "openvino": (("openvino",), "openvino"),
    "onnxruntime.quantized": (("onnxruntime", "onnx"), "onnx"),
    "torch.quantized": (("torch",), "torch"),
    "tflite.quantized": (("tensorflow", "flatbuffers"), "tensorflow"),
}

#: adapter family -> the devices its name may carry after a colon (``torch:cuda``); the first is the default
DEVICES = {
    "torch": ("cpu", "cuda"),
    "jax": ("cpu", "gpu"),
    "tensorflow": ("cpu", "gpu"),
    "openvino": ("cpu", "gpu"),
}


def split_device(name: str) -> tuple[str, str | None]:
    """``('torch', 'cuda')`` for ``'torch:cuda'``; ``(name, None)`` for a name without a device suffix.

    >>> split_device('jax:gpu'), split_device('torch'), split_device('mypkg.mod:conv')
    (('jax', 'gpu'), ('torch', None), ('mypkg.mod:conv', None))
    """
    base, sep, device = name.partition(":")
    if sep and base in _MODULES and family_of(base) in DEVICES:
        return base, device
    return name, None

_cache: dict[str, Target] = {}


#: the entry-point group through which other packages register adapters
ENTRY_POINT_GROUP = "refconv.adapters"


def plugins() -> dict[str, Any]:
    """Adapters other packages register: entry points of :data:`ENTRY_POINT_GROUP`, name -> entry point.

    An entry point's name is the target name (``refconv check <name>``); its
    value is ``'module:make'`` (a function ``make(name) -> Target``) or
    ``'module:object'`` for an object with such a ``make`` method.  A built-in
    name is never replaced.
    """
    from importlib.metadata import entry_points

    return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name not in ADAPTERS}


def module_of(name: str) -> str | None:
    """The adapter module for ``name`` (variants such as ``onnxruntime.explicit`` included), or None.

    For an adapter another package registers, the entry point's value (``'module:make'``).
    """
    if name in ADAPTERS:
        return ADAPTERS[name]
    base, device = split_device(name)
    if device is not None:
        return ADAPTERS[base]
    ep = plugins().get(name)
    return None if ep is None else ep.value


def _plugin(name: str) -> Target:
    """The registered adapter ``name``: its entry point loaded and made (TargetError naming it on failure)."""
    ep = plugins()[name]
    try:
        obj = ep.load()
        make = obj if not hasattr(obj, "make") else obj.make
        target = make(name)
    except Exception as exc:  # noqa: BLE001 - a third-party adapter failing to load is named, not a traceback
        raise TargetError(f"target={name!r}: the adapter registered as {ep.value!r} failed to load: "
                          f"{type(exc).__name__}: {exc}") from None
    if not isinstance(target, Target):
        raise TargetError(f"target={name!r}: the adapter registered as {ep.value!r} returned {type(target).__name__}, "
                          "not a Target")
    return target


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):  # a parent package missing, or sys.modules[module] set to None
        return False


def family_of(name: str) -> str:
    """The adapter family of a name: ``'onnxruntime'`` for ``'onnxruntime.opset11'``.

    >>> family_of('onnxruntime.opset11'), family_of('refconv.fast')
    ('onnxruntime', 'refconv.fast')
    """
    name = name.partition(":")[0]
    return name if name in _MODULES else name.rpartition(".")[0]


def require(name: str) -> None:
    """TargetError naming the install command when the library of adapter ``name`` is not installed."""
    family = family_of(name)
    if family not in LIBRARIES:
        return
    modules, extra = LIBRARIES[family]
    missing = [m for m in modules if not _installed(m)]
    if missing:
        what = "" if missing == [family] else f" ({', '.join(missing)} not found)"
        raise TargetError(f"{family} is not installed{what}: pip install 'refconv[{extra}]'")


def get(name: str) -> Target:
    """The adapter ``name`` as a :class:`~refconv.conformance.targets.Target`."""
    module = module_of(name)
    if module is None:
        raise TargetError(f"target={name!r}: not a built-in adapter ({', '.join(ADAPTERS)})")
    if name not in ADAPTERS and split_device(name)[1] is None:
        if name not in _cache:
            _cache[name] = _plugin(name)
        return _cache[name]
    require(name)
    base, device = split_device(name)
    if device is not None and device not in DEVICES[family_of(base)]:
        raise TargetError(f"target={name!r}: device {device!r} is not one of "
                          f"{', '.join(repr(d) for d in DEVICES[family_of(base)])} for {family_of(base)}")
    if name not in _cache:
        mod = importlib.import_module(f".{module}", __name__)
        try:
            _cache[name] = mod.make(name)
        except TargetError:  # the adapter's own refusal (a device that is not there) names the target already
            raise
        except ValueError as exc:  # an unknown variant (e.g. onnxruntime.opset99)
            raise TargetError(f"target={name!r}: {exc}") from None
    return _cache[name]
