"""Shape functions for the check-shape self-test: classic mistakes, and correct rules in other algebraic forms.

Every function has the signature ``f(op, input_shape, weight_shape, **params)
-> output_shape`` of :mod:`refconv.conformance.shapecheck.target` and raises
ValueError for a configuration it refuses.  One generic rule (:func:`_rule`)
carries knobs; each named function sets one.  Nothing here uses refconv: these
stand in for the code under test.

The mistakes (each caught at its smallest case, ``tests/test_check_shape.py``):

- ``ceil_no_last_window``: ``ceil_mode`` as a plain ceiling, without the rule
  that the last window must start inside the input or the left padding;
- ``same_not_clamped``: the ``same`` total padding ``(ceil(n/s) - 1)*s +
  d*(k-1) + 1 - n`` not clamped at zero, and negative padding refused (as
  ONNX Runtime's MaxPool does);
- ``dilation_from_zero``: ``dilation`` read as the number of holes between taps
  (``d = 0`` dense), so the dilated kernel spans ``(d+1)*(k-1) + 1``;
- ``output_padding_twice``: the transposed ``output_padding`` added twice.

The correct ones: ``plain`` (the textbook forms), ``negative_floor`` (every
ceiling as ``-((-a) // b)``), ``expanded`` (``(n + lo + hi - d*k + d - 1) // s
+ 1``, the transposed rule multiplied out), ``min_form`` (the ``ceil_mode``
rule as ``min(ceil(L/s), floor((n + lo - 1)/s)) + 1``) and ``same_shortcut``
(``ceil(n/s)`` and ``n*s`` for the ``same`` modes without computing any padding).
"""

from __future__ import annotations

import math


def _ceil_div(a: int, b: int, form: str) -> int:
    if form == "negative_floor":
        return -((-a) // b)
    return (a + b - 1) // b  # ceil(a / b) for b >= 1, also for negative a


def _same_pads(n: int, k: int, s: int, d: int, lower: bool, clamp: bool) -> tuple[int, int]:
    out = -(-n // s)
    total = (out - 1) * s + d * (k - 1) + 1 - n
    if clamp:
        total = max(total, 0)
    small, big = total // 2, total - total // 2
    return (big, small) if lower else (small, big)


def _axis(op: str, n: int, k: int, s: int, d: int, pad, op_pad: int, ceil_mode: bool, knobs: dict) -> int:
    """Output length of one axis, or ValueError."""
    form = knobs.get("form", "plain")
    holes = knobs.get("dilation_from", 1) == 0
    span = (d + 1) * (k - 1) + 1 if holes else d * (k - 1) + 1
    mode = pad if isinstance(pad, str) else "explicit"
    if op == "conv_transpose":
        if mode in ("same", "same_lower"):
            if form == "same_shortcut":
                return n * s
            lo, hi = _same_pads(n * s, k, s, d, mode == "same_lower", knobs.get("clamp_same", True))
            op_pad = n * s - ((n - 1) * s - lo - hi + span)
        else:
            lo, hi = (0, 0) if mode == "valid" else pad
            if op_pad >= s and op_pad >= d:
                raise ValueError(f"output_padding {op_pad} not below stride {s} or dilation {d}")
        times = knobs.get("output_padding_times", 1)
        if form == "expanded":
            out = s * n - s - lo - hi + d * k - d + times * op_pad + 1
        else:
            out = (n - 1) * s - lo - hi + (span - 1) + times * op_pad + 1
        if out < 1:
            raise ValueError("empty output")
        return out
    if mode in ("same", "same_lower"):
        if form == "same_shortcut":
            return -(-n // s)
        lo, hi = _same_pads(n, k, s, d, mode == "same_lower", knobs.get("clamp_same", True))
        if min(lo, hi) < 0:
            raise ValueError(f"padding values must be non-negative, got {(lo, hi)}")
    else:
        lo, hi = (0, 0) if mode == "valid" else pad
    if form == "expanded" and not holes:
        last = n + lo + hi - d * k + d - 1
    else:
        last = n + lo + hi - span
    if op == "conv" or not ceil_mode:
        if last < 0:
            raise ValueError("kernel larger than the padded input")
        return last // s + 1
    if form == "min_form":
        out = min(_ceil_div(last, s, form), (n + lo - 1) // s) + 1
    else:
        out = _ceil_div(last, s, form) + 1
        if knobs.get("last_window", True) and (out - 1) * s >= n + lo:
            out -= 1  # the last window would start in the right padding
    if out < 1:
        raise ValueError("empty output")
    return out


def _rule(op, input_shape, weight_shape, knobs, **params):
    dims = len(input_shape) - 2
    pad = params["padding"]
    kernel = weight_shape[2:] if op in ("conv", "conv_transpose") else weight_shape
    one = (1,) * dims
    sizes = [
        _axis(op, input_shape[2 + i], kernel[i], params["stride"][i], params.get("dilation", one)[i],
              pad if isinstance(pad, str) else pad[i], params.get("output_padding", (0,) * dims)[i],
              params.get("ceil_mode", False), knobs)
        for i in range(dims)
    ]
    if op == "conv":
        channels = weight_shape[0]
    elif op == "conv_transpose":
        channels = weight_shape[1] * params["groups"]
    else:
        channels = input_shape[1]
    return (input_shape[0], channels, *sizes)


# ---- classic mistakes -----------------------------------------------------------------------------


def ceil_no_last_window(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"last_window": False}, **params)


def same_not_clamped(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"clamp_same": False}, **params)


def dilation_from_zero(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"dilation_from": 0}, **params)


def output_padding_twice(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"output_padding_times": 2}, **params)


def transposed_channels_per_group(op, input_shape, weight_shape, **params):
    """The transposed convolution's output channels read as ``weight_shape[1]``, forgetting ``groups``."""
    out = _rule(op, input_shape, weight_shape, {}, **params)
    return (out[0], weight_shape[1], *out[2:]) if op == "conv_transpose" else out


def spatial_axes_swapped(op, input_shape, weight_shape, **params):
    """The output's spatial sizes in reverse axis order (a layout slip)."""
    out = _rule(op, input_shape, weight_shape, {}, **params)
    return (*out[:2], *reversed(out[2:]))


# ---- correct, in other algebraic forms ------------------------------------------------------------


def plain(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {}, **params)


def negative_floor(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"form": "negative_floor"}, **params)


def expanded(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"form": "expanded"}, **params)


def min_form(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"form": "min_form"}, **params)


def same_shortcut(op, input_shape, weight_shape, **params):
    return _rule(op, input_shape, weight_shape, {"form": "same_shortcut"}, **params)


def float_ceil(op, input_shape, weight_shape, **params):
    """``math.ceil`` of a float quotient: exact for these small sizes, another form again."""
    if op in ("max_pool", "avg_pool") and params.get("ceil_mode") and not isinstance(params["padding"], str):
        sizes = []
        for n, k, s, d, (lo, hi) in zip(input_shape[2:], weight_shape, params["stride"],
                                        params.get("dilation", (1,) * len(weight_shape)), params["padding"]):
            span = d * (k - 1) + 1
            out = math.ceil((n + lo + hi - span) / s) + 1
            out -= (out - 1) * s >= n + lo
            if out < 1:
                raise ValueError("empty output")
            sizes.append(out)
        return (*input_shape[:2], *sizes)
    return plain(op, input_shape, weight_shape, **params)


BROKEN = ("ceil_no_last_window", "same_not_clamped", "dilation_from_zero", "output_padding_twice",
          "transposed_channels_per_group", "spatial_axes_swapped")
CORRECT = ("plain", "negative_floor", "expanded", "min_form", "same_shortcut", "float_ceil")
