"""tinygrad adapter: ``Tensor.conv2d``, ``conv_transpose2d``, ``max_pool2d``, ``avg_pool2d`` and autograd on the CPU.

tinygrad's functions are N-dimensional despite their names and take the
canonical layouts (``(N, C, *S)``, weights ``(C_out, C_in/groups, *K)`` and,
transposed, ``(C_in, C_out/groups, *K)``).  Padding pairs pass as tinygrad's
flat ``(lo_last, hi_last, ..., lo_first, hi_first)`` (the last axis first, as
``torch.nn.functional.pad``).  Gradients are ``Tensor.gradient`` of the
forward convolution with the incoming gradient.

tinygrad's ``CPU`` device compiles C kernels at run time with ``clang``
(``.ci/setup`` installs it; ``CC`` names another compiler); without a
compiler it has no device and the adapter says so.  The device is fixed to
``CPU`` here, whatever ``DEV`` says.  dtypes float32 and float64.

Declared restrictions: no ``divisor_override`` (tinygrad has none), and
``conv_transpose2d`` does not refuse invalid configurations (an
``output_padding`` no forward convolution produces); every other feature of
the canonical signatures is passed and checked.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target, TargetError

VARIANTS = ("tinygrad",)
DEVICE = "CPU"
#: the default budget of ``refconv check tinygrad`` (every op, no ``--max-examples``), per op and dims: tinygrad
#: generates and compiles a C kernel for every new shape (0.4 s of Python code generation and 0.2 s of clang per
#: kernel on one core; a 3-D gradient up to 5 s), so the catalogue runs on this many of its shapes, evenly
#: spaced, with every value class and memory layout of each, and this many explored cases; and the default
#: per-call timeout (``--timeout``) of every check of tinygrad, since a call includes that compilation
BUDGET = {"catalogue_shapes": 6, "max_examples": 2, "timeout": 60.0,
          "why": "tinygrad's compile cost: a new C kernel per shape"}


def _tinygrad():
    from tinygrad import Tensor, dtypes

    return Tensor, dtypes


def flat_padding(padding) -> list[int]:
    """``((lo_1, hi_1), ..., (lo_d, hi_d))`` -> tinygrad's ``[lo_d, hi_d, ..., lo_1, hi_1]`` (the last axis first).

    >>> flat_padding(((1, 2), (3, 4)))
    [3, 4, 1, 2]
    """
    return [int(v) for lo, hi in reversed(tuple(padding)) for v in (lo, hi)]


def _tensor(a: Any) -> Any:
    Tensor, _ = _tinygrad()
    if a is None:
        return None
    # a tensor on the CPU device owning a copy of the array
    return Tensor(np.array(a, copy=True, order="C"), device=DEVICE)


def _np(t: Any) -> np.ndarray:
    return np.asarray(t.numpy())


def conv(x, w, b, *, stride, padding, dilation, groups):
    return _np(_tensor(x).conv2d(_tensor(w), _tensor(b), groups=groups, stride=tuple(stride),
                                 dilation=tuple(dilation), padding=flat_padding(padding)))


def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
    return _np(_tensor(x).conv_transpose2d(_tensor(w), _tensor(b), groups=groups, stride=tuple(stride),
                                           dilation=tuple(dilation), padding=flat_padding(padding),
                                           output_padding=tuple(output_padding)))


def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    return _np(_tensor(x).max_pool2d(tuple(kernel_size), stride=tuple(stride), dilation=tuple(dilation),
                                     padding=flat_padding(padding), ceil_mode=bool(ceil_mode)))


def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad, dilation=None):
    extra = {} if dilation is None else {"dilation": tuple(dilation)}
    return _np(_tensor(x).avg_pool2d(tuple(kernel_size), stride=tuple(stride), padding=flat_padding(padding),
                                     ceil_mode=bool(ceil_mode), count_include_pad=bool(count_include_pad), **extra))


def _grad(x, w, dy, wrt, *, stride, padding, dilation, groups):
    """The gradient of the forward convolution with respect to ``wrt`` ('x' or 'w', given as a shape)."""
    given = w if wrt == "x" else x
    leaf = _tensor(np.zeros(tuple(x if wrt == "x" else w), dtype=given.dtype))  # Tensor.gradient needs no flag
    tx, tw = (leaf, _tensor(w)) if wrt == "x" else (_tensor(x), leaf)
    y = tx.conv2d(tw, None, groups=groups, stride=tuple(stride), dilation=tuple(dilation),
                  padding=flat_padding(padding))
    (g,) = y.gradient(leaf, gradient=_tensor(dy))
    return _np(g)


def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups):
    return _grad(tuple(input_shape), w, dy, "x", stride=stride, padding=padding, dilation=dilation, groups=groups)


def conv_grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups):
    return _grad(x, tuple(weight_shape), dy, "w", stride=stride, padding=padding, dilation=dilation, groups=groups)


FUNCTIONS: dict[str, Callable] = {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool,
                                                           conv_grad_input, conv_grad_weight)}


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    base = ALL.replace(ops=tuple(FUNCTIONS), dtypes=("float32", "float64"), divisor_override=False)
    if op == "conv_transpose":
        # conv_transpose2d computes any output_padding, also one no forward convolution produces
        return base.replace(refuses_invalid=False,
                            notes=("invalid conv_transpose configurations (tinygrad does not refuse them)",))
    return base


def device_ready() -> str:
    """'' when tinygrad's CPU device opens, else why not (its C compiler is missing, most often)."""
    try:
        from tinygrad import Device

        Device[DEVICE]
    except Exception as exc:  # noqa: BLE001 - any failure to open the device is named
        return f"{type(exc).__name__}: {exc}"
    return ""


def environment() -> list[str]:
    """The device and compiler the kernels run on."""
    import os

    import tinygrad

    return [f"tinygrad {getattr(tinygrad, '__version__', '')} on {DEVICE} (C kernels compiled by "
            f"{os.environ.get('CC', 'clang')})".replace("tinygrad  on", "tinygrad on")]


def make(name: str = "tinygrad") -> Target:
    if name not in VARIANTS:
        raise ValueError(f"name={name!r}: tinygrad has one adapter, tinygrad (its CPU device)")
    why = device_ready()
    if why:
        raise TargetError(f"target={name!r}: tinygrad's {DEVICE} device does not open ({why}); it compiles C with "
                          "clang at run time: apt-get install clang (or set CC to a C compiler)")
    setup = "from refconv.conformance import adapters\ntarget = adapters.get('tinygrad').function({op!r})"
    target = Target(name, lambda op: FUNCTIONS[op], capabilities, setup, spec=name)
    target.environment = environment
    return target
