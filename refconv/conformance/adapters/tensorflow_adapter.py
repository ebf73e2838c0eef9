"""TensorFlow adapter: ``tf.nn`` convolution and pooling on channels-last tensors, gradients by ``tf.GradientTape``.

Every array is translated at the edge: activations ``(N, C, *S)`` to
``(N, *S, C)`` (``NWC`` / ``NHWC`` / ``NDHWC``), convolution weights
``(C_out, C_in/groups, *K)`` to ``(*K, C_in/groups, C_out)`` (``HWIO``),
depthwise weights to ``(*K, C_in, multiplier)`` (``HWIM``) and
transposed-convolution weights ``(C_in, C_out, *K)`` to ``(*K, C_out, C_in)``;
results come back channels-first.

The case's padding pairs reach TensorFlow through its own modes wherever the
case is what a mode computes: ``'VALID'`` when they are all zero, ``'SAME'``
when they are TensorFlow's split (the odd zero at the end), the explicit
``[[0, 0], [lo, hi], ..., [0, 0]]`` list where the op takes one
(``tf.nn.conv2d``, ``depthwise_conv2d``, ``conv2d_transpose``, ``max_pool``
in 2-D), and otherwise ``tf.pad`` (zeros; ``-inf`` for max pooling) followed by
``'VALID'``, the translation a port to ``tf.nn.conv1d`` / ``conv3d`` needs.
A 2-D convolution with ``groups == C_in > 1`` goes through
``tf.nn.depthwise_conv2d``; other groups through ``tf.nn.convolution``'s
grouped path.  A transposed convolution is ``tf.nn.conv_transpose`` with the
canonical output length as ``output_shape``.

Declared restrictions (TensorFlow's own, found by running the CPU kernels;
float32 runs oneDNN kernels, float64 Eigen's):

- average pooling excludes padding from the divisor under ``'SAME'`` and has
  no explicit padding: ``count_include_pad=False`` only where the pairs are
  the SAME split (or zero); no dilation, no ``divisor_override``;
- no ``ceil_mode`` (pooling), no ``output_padding >= stride`` (the transposed
  convolution is the adjoint of a forward one), no grouped transposed
  convolution, no grouped 3-D convolution;
- a dilated window with a stride > 1 is refused by ``tf.nn.convolution``
  and ``tf.nn.pool``, so dilated convolutions go through ``conv1d`` /
  ``conv2d`` / ``conv3d`` and dilated pooling is offered with stride 1 only;
- no dilated transposed convolution (Eigen's CPU kernel refuses it, and
  oneDNN's float32 path falls back to it for some cases);
- float64: no dilated 3-D convolution (Eigen's CPU kernels), no 3-D pooling, and ``depthwise_conv2d`` only with
  equal strides on both axes;
- a transposed convolution in 1-D or 3-D only where the padding is what
  ``'VALID'`` or ``'SAME'`` computes (``conv1d_transpose`` and
  ``conv3d_transpose`` take no explicit padding).

The device is ``tensorflow`` (the CPU) or ``tensorflow:gpu``; :func:`environment`
names the math modes in force (TensorFloat-32 for float32 on recent GPUs).
"""

from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from ..cases import ALL, Capabilities, Case
from ..targets import Target, TargetError

VARIANTS = ("tensorflow",)
#: devices: the refconv suffix -> TensorFlow's device string
DEVICES = {"cpu": "/CPU:0", "gpu": "/GPU:0"}


def _tf():
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # keep TensorFlow's start-up log off the report
    import tensorflow as tf

    return tf


# --------------------------------------------------------------------------- layouts


def to_last(a: np.ndarray) -> np.ndarray:
    """``(N, C, *S)`` -> ``(N, *S, C)``.

    >>> to_last(np.zeros((1, 2, 3, 4))).shape
    (1, 3, 4, 2)
    """
    return np.moveaxis(np.asarray(a), 1, -1)


def to_first(a: Any) -> np.ndarray:
    """``(N, *S, C)`` -> ``(N, C, *S)`` (a numpy copy of a tensor)."""
    return np.ascontiguousarray(np.moveaxis(np.asarray(a), -1, 1))


def hwio(w: np.ndarray) -> np.ndarray:
    """Convolution weight ``(C_out, C_in/g, *K)`` -> ``(*K, C_in/g, C_out)``.

    >>> hwio(np.zeros((5, 3, 2, 4))).shape
    (2, 4, 3, 5)
    """
    d = w.ndim - 2
    return np.transpose(w, (*range(2, 2 + d), 1, 0))


def hwim(w: np.ndarray, cin: int) -> np.ndarray:
    """Depthwise weight ``(C_in * M, 1, *K)`` -> ``(*K, C_in, M)``: output channel ``c * M + m`` is ``[..., c, m]``.

    >>> hwim(np.arange(6).reshape(6, 1, 1, 1), 2)[0, 0].tolist()
    [[0, 1, 2], [3, 4, 5]]
    """
    d = w.ndim - 2
    m = w.shape[0] // cin
    return np.transpose(w.reshape(cin, m, *w.shape[2:]), (*range(2, 2 + d), 0, 1))


def kio_transposed(w: np.ndarray) -> np.ndarray:
    """Transposed-convolution weight ``(C_in, C_out, *K)`` -> TensorFlow's ``(*K, C_out, C_in)``.

    >>> kio_transposed(np.zeros((3, 5, 2, 4))).shape
    (2, 4, 5, 3)
    """
    d = w.ndim - 2
    return np.transpose(w, (*range(2, 2 + d), 1, 0))


def hwio_to_oihw(g: Any) -> np.ndarray:
    """The inverse of :func:`hwio` (a gradient comes back in TensorFlow's layout)."""
    g = np.asarray(g)
    d = g.ndim - 2
    return np.ascontiguousarray(np.transpose(g, (d + 1, d, *range(d))))


# --------------------------------------------------------------------------- padding modes


def _same(padding, spatial, kernel, stride, dilation) -> bool:
    from ... import shapes

    return all(tuple(p) == shapes.same_padding(n, k, s, d)
               for p, n, k, s, d in zip(padding, spatial, kernel, stride, dilation))


def _mode(padding, spatial, kernel, stride, dilation) -> str | None:
    """``'SAME'`` or ``'VALID'`` where the pairs are what that mode computes (SAME first), else None.

    >>> _mode(((1, 1),), (5,), (3,), (1,), (1,)), _mode(((0, 0),), (5,), (3,), (1,), (1,)), _mode(((2, 0),), (5,), (3,), (1,), (1,))
    ('SAME', 'VALID', None)
    """
    if _same(padding, spatial, kernel, stride, dilation):
        return "SAME"
    if all(tuple(p) == (0, 0) for p in padding):
        return "VALID"
    return None


def _explicit(padding) -> list:
    # TensorFlow's explicit padding: one [before, after] per axis of the NHWC tensor
    return [[0, 0], *[[int(lo), int(hi)] for lo, hi in padding], [0, 0]]


def transpose_mode(spatial, kernel, stride, padding, output, dilation) -> str | None:
    """The mode of ``tf.nn.conv_transpose`` that computes the case, or None.

    TensorFlow's transposed convolution is the gradient of the forward
    convolution on an input of ``output`` samples; its values depend only on
    the crop ``lo`` and that length.  ``'VALID'``: ``lo == 0`` and the forward
    VALID convolution of ``output`` samples has ``n`` outputs; ``'SAME'``:
    ``lo`` is TensorFlow's SAME split ``total // 2`` and ``ceil(output / s) == n``.

    >>> transpose_mode((3,), (3,), (2,), ((1, 1),), (5,), (1,)), transpose_mode((3,), (3,), (2,), ((0, 0),), (7,), (1,))
    ('SAME', 'VALID')
    """
    from ... import shapes

    same = valid = True
    for n, k, s, (lo, _), o, d in zip(spatial, kernel, stride, padding, output, dilation):
        span = d * (k - 1) + 1
        valid = valid and lo == 0 and o >= span and (o - span) // s + 1 == n
        same = same and -(-o // s) == n and (lo, None)[0] == shapes.same_padding(o, k, s, d)[0]
    return "SAME" if same else "VALID" if valid else None


# --------------------------------------------------------------------------- the functions


def _functions(device: str) -> dict[str, Callable]:
    place = DEVICES[device]

    def const(a: Any) -> Any:
        tf = _tf()
        return None if a is None else tf.constant(np.ascontiguousarray(a))

    def forward(x, w, kernel, stride, padding, dilation, groups):
        """The forward convolution of channels-last ``x``; ``w`` canonical (numpy) or a variable in TensorFlow's layout."""
        tf = _tf()
        d = len(stride)
        cin = int(x.shape[-1])
        spatial = tuple(int(n) for n in x.shape[1:-1])
        mode = _mode(padding, spatial, kernel, stride, dilation)
        if d == 2 and groups == cin and groups > 1:
            # depthwise: HWIM filter, strides [1, sh, sw, 1], dilations (dh, dw)
            return tf.nn.depthwise_conv2d(x, const(hwim(w, cin)) if isinstance(w, np.ndarray) else w,
                                          [1, *stride, 1], mode or _explicit(padding), dilations=list(dilation))
        filt = const(hwio(w)) if isinstance(w, np.ndarray) else w
        if mode is None and d != 2:
            # conv1d / conv3d take no explicit padding: zeros by tf.pad, then VALID
            x, mode = tf.pad(x, _explicit(padding)), "VALID"
        pad = mode or _explicit(padding)
        if d == 1:
            return tf.nn.conv1d(x, filt, list(stride), pad, dilations=list(dilation))
        if d == 2:
            return tf.nn.conv2d(x, filt, list(stride), pad, dilations=list(dilation))
        return tf.nn.conv3d(x, filt, [1, *stride, 1], pad, dilations=[1, *dilation, 1])

    def add_bias(y, b):
        return y if b is None else y + const(b)

    def conv(x, w, b, *, stride, padding, dilation, groups):
        with _tf().device(place):
            y = forward(const(to_last(x)), w, tuple(w.shape[2:]), stride, padding, dilation, groups)
            return to_first(add_bias(y, b))

    def conv_grad(x, w, dy, wrt, *, stride, padding, dilation, groups):
        """The gradient of the forward convolution with respect to ``wrt`` ('x' or 'w', given as a shape)."""
        tf = _tf()
        d = len(stride)
        dtype = (w if wrt == "x" else x).dtype
        with tf.device(place):
            if wrt == "x":
                var = tf.Variable(np.zeros((x[0], *x[2:], x[1]), dtype=dtype))
                with tf.GradientTape() as tape:
                    y = forward(var, w, tuple(w.shape[2:]), stride, padding, dilation, groups)
                return to_first(tape.gradient(y, var, output_gradients=const(to_last(dy))))
            cin = x.shape[1]
            depthwise = d == 2 and groups == cin and groups > 1
            shape = w
            zeros = np.zeros(tuple(shape), dtype=dtype)
            var = tf.Variable(hwim(zeros, cin) if depthwise else hwio(zeros))
            with tf.GradientTape() as tape:
                y = forward(const(to_last(x)), var, tuple(shape[2:]), stride, padding, dilation, groups)
            g = np.asarray(tape.gradient(y, var, output_gradients=const(to_last(dy))))
            if depthwise:
                # (*K, C_in, M) -> (C_in * M, 1, *K)
                return np.ascontiguousarray(np.moveaxis(g, (d, d + 1), (0, 1)).reshape(tuple(shape)))
            return hwio_to_oihw(g)

    def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups):
        return conv_grad(tuple(input_shape), w, dy, "x", stride=stride, padding=padding, dilation=dilation,
                         groups=groups)

    def conv_grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups):
        return conv_grad(x, tuple(weight_shape), dy, "w", stride=stride, padding=padding, dilation=dilation,
                         groups=groups)

    def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
        from ... import shapes

        tf = _tf()
        out = [shapes.conv_transpose_output_size(n, k, s, p, op, dl)
               for n, k, s, p, op, dl in zip(x.shape[2:], w.shape[2:], stride, padding, output_padding, dilation)]
        mode = transpose_mode(x.shape[2:], w.shape[2:], stride, padding, out, dilation)
        pad = mode or _explicit(padding)  # explicit pairs: conv2d_transpose only (declared)
        shape = [x.shape[0], *out, w.shape[1] * groups]
        with tf.device(place):
            y = tf.nn.conv_transpose(const(to_last(x)), const(kio_transposed(w)), shape, [1, *stride, 1], pad,
                                     dilations=[1, *dilation, 1])
            return to_first(add_bias(y, b))

    def pool_padding(x, padding, kernel_size, stride, dilation, fill: float, explicit_ok: bool):
        """(x, TensorFlow padding): the mode when one computes the case, else explicit pairs or tf.pad with ``fill``."""
        tf = _tf()
        spatial = tuple(int(n) for n in x.shape[1:-1])
        mode = _mode(padding, spatial, kernel_size, stride, dilation)
        if mode is not None:
            return x, mode
        if explicit_ok:
            return x, _explicit(padding)
        return tf.pad(x, _explicit(padding), constant_values=fill), "VALID"

    def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
        tf = _tf()
        d = len(stride)
        with tf.device(place):
            t = const(to_last(x))
            if any(v != 1 for v in dilation):
                # tf.nn.pool: a dilated window only with stride 1 and VALID (padding by -inf first)
                t = tf.pad(t, _explicit(padding), constant_values=-np.inf)
                y = tf.nn.pool(t, list(kernel_size), "MAX", padding="VALID", dilations=list(dilation))
            else:
                t, pad = pool_padding(t, padding, kernel_size, stride, dilation, -np.inf, explicit_ok=d == 2)
                y = tf.nn.max_pool(t, list(kernel_size), list(stride), pad)
            return to_first(y)

    def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
        tf = _tf()
        with tf.device(place):
            t = const(to_last(x))
            spatial = tuple(x.shape[2:])
            ones = (1,) * len(stride)
            if all(tuple(p) == (0, 0) for p in padding):
                pad = "VALID"
            elif not count_include_pad and _same(padding, spatial, kernel_size, stride, ones):
                pad = "SAME"  # TensorFlow's SAME average counts the input elements only
            elif count_include_pad:
                # the zeros are samples of the window: tf.pad, then VALID
                t, pad = tf.pad(t, _explicit(padding)), "VALID"
            else:
                raise ValueError(f"padding={tuple(padding)}: TensorFlow's average pooling excludes padding only under "
                                 "'SAME' (declared unsupported)")
            return to_first(tf.nn.avg_pool(t, list(kernel_size), list(stride), pad))

    return {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool, conv_grad_input, conv_grad_weight)}


# --------------------------------------------------------------------------- capabilities


def _depthwise(case: Case) -> bool:
    return case.dims == 2 and case.groups == case.cin and case.groups > 1


def _conv_rule(dtype: str) -> Callable[[Case], bool]:
    def tensorflow_conv_kernels(case: Case) -> bool:
        """TensorFlow's CPU kernels: no grouped 3-D convolution; float64: no dilated 3-D, depthwise with equal strides."""
        if case.dims == 3 and case.groups > 1:
            return False
        if dtype == "float64":
            if case.dims == 3 and any(d != 1 for d in case.dilation):
                return False
            if _depthwise(case) and case.stride[0] != case.stride[1]:
                return False
        return True

    return tensorflow_conv_kernels


def _grad_rule(dtype: str) -> Callable[[Case], bool]:
    conv_rule = _conv_rule(dtype)

    def tensorflow_backprop_kernels(case: Case) -> bool:
        """The forward convolution's rule; groups only 1 or depthwise 2-D (no grouped gradients on CPU), the
        depthwise gradients with equal strides in every dtype (DepthwiseConv2dNativeBackpropInput / Filter)."""
        if _depthwise(case) and case.stride[0] != case.stride[1]:
            return False
        return conv_rule(case) and (case.groups == 1 or _depthwise(case))

    return tensorflow_backprop_kernels


def _transpose_rule(dtype: str) -> Callable[[Case], bool]:
    def tensorflow_conv_transpose(case: Case) -> bool:
        """output_padding below the stride; no dilation; 1-D / 3-D only where VALID or SAME computes the case."""
        from ... import shapes

        if any(o >= s for o, s in zip(case.output_padding, case.stride)):
            return False
        if any(d != 1 for d in case.dilation):
            # Conv2DBackpropInput's CPU fallback: "Current CPU implementations do not yet support dilation rates
            # larger than 1" (float64 always; float32 wherever oneDNN declines the case)
            return False
        if case.dims == 2:
            return True
        out = [shapes.conv_transpose_output_size(n, k, s, p, op, d) for n, k, s, p, op, d in
               zip(case.spatial, case.kernel, case.stride, case.padding, case.output_padding, case.dilation)]
        return transpose_mode(case.spatial, case.kernel, case.stride, case.padding, out, case.dilation) is not None

    return tensorflow_conv_transpose


def _max_pool_rule(case: Case) -> bool:
    """A dilated window only with stride 1 (tf.nn.pool refuses a dilated window with a stride)."""
    return all(d == 1 for d in case.dilation) or all(s == 1 for s in case.stride)


def _avg_pool_rule(case: Case) -> bool:
    """count_include_pad=False only where the padding is zero or TensorFlow's SAME split."""
    if case.count_include_pad or all(tuple(p) == (0, 0) for p in case.padding):
        return True
    return _same(case.padding, case.spatial, case.kernel, case.stride, (1,) * case.dims)


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    base = ALL.replace(ops=("conv", "conv_transpose", "max_pool", "avg_pool", "conv_grad_input", "conv_grad_weight"),
                       dtypes=("float32", "float64"), divisor_override=False)
    if op in ("conv", "conv_grad_input", "conv_grad_weight"):
        notes: tuple[str, ...] = ("grouped 3-D convolution (TensorFlow's Conv3D has no groups)",)
        if dtype == "float64":
            notes += ("float64: dilated 3-D convolution, depthwise with unequal strides (Eigen's CPU kernels)",)
        if op != "conv":
            # Conv2DBackpropInput / Conv2DBackpropFilter: "Current CPU implementations do not yet support dilation",
            # "Gradients for grouped convolutions are not supported on CPU" (depthwise has its own kernels)
            return base.replace(rule=_grad_rule(dtype), dilation=False,
                                notes=notes + ("dilated convolution gradients (TensorFlow's CPU backprop kernels)",
                                               "grouped convolution gradients other than depthwise 2-D (not on CPU)",
                                               "depthwise gradients with unequal strides (both dtypes)"))
        return base.replace(rule=_conv_rule(dtype), notes=notes)
    if op == "conv_transpose":
        return base.replace(groups=False, rule=_transpose_rule(dtype),
                            notes=("grouped transposed convolution", "output_padding >= stride",
                                   "1-D / 3-D transposed padding other than VALID / SAME (no explicit padding)")
                            + ("dilated transposed convolution (Conv2DBackpropInput's CPU kernels)",))
    if op == "max_pool":
        return base.replace(ceil_mode=False, rule=_max_pool_rule,
                            dtypes=("float32",) if dims == 3 else base.dtypes,
                            notes=("ceil_mode (TensorFlow has none)", "dilated max pooling with stride > 1"))
    if op == "avg_pool":
        return base.replace(ceil_mode=False, dilation=False, rule=_avg_pool_rule,
                            dtypes=("float32",) if dims == 3 else base.dtypes,
                            notes=("ceil_mode (TensorFlow has none)",
                                   "count_include_pad=False with padding other than SAME (TensorFlow's SAME average "
                                   "excludes the padding; it has no explicit padding)"))
    return base.replace(ops=())


def isolated(op: str, dtype: str) -> str:
    """Why the check runs ``op`` in ``dtype`` in a worker process ('' when it runs in the checking process).

    float32 ``MaxPool`` (oneDNN) is killed by ``SIGFPE`` on a window longer than the padded input whose output
    length TensorFlow computes as 0 (known divergence ``tf-maxpool-float32-sigfpe``): in the checking process
    the signal would end the whole run; in a worker it is that case's failure (kind ``crash``).

    >>> isolated('max_pool', 'float32').startswith('float32 MaxPool'), isolated('max_pool', 'float64')
    (True, '')
    """
    if op == "max_pool" and dtype == "float32":
        return ("float32 MaxPool (oneDNN) is killed by SIGFPE on a window longer than the padded input "
                "(known divergence tf-maxpool-float32-sigfpe)")
    return ""


def environment(device: str = "cpu") -> list[str]:
    """The math modes in force on ``device``: TensorFloat-32 on GPUs, oneDNN on the CPU."""
    tf = _tf()
    if device == "gpu":
        tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
        return [f"tensorflow {tf.__version__} on {DEVICES[device]}: TensorFloat-32 "
                f"{'on (float32 convolutions may round inputs to TF32)' if tf32 else 'off'}"]
    onednn = os.environ.get("TF_ENABLE_ONEDNN_OPTS", "1") != "0"
    return [f"tensorflow {tf.__version__} on the CPU: oneDNN kernels {'on' if onednn else 'off'} "
            "(float32 runs oneDNN, float64 Eigen)"]


def make(name: str = "tensorflow") -> Target:
    """The adapter ``name``: ``tensorflow`` (the CPU) or ``tensorflow:gpu``."""
    base, _, device = name.partition(":")
    device = device or "cpu"
    if base not in VARIANTS or device not in DEVICES:
        raise ValueError(f"name={name!r}: TensorFlow adapters are tensorflow, tensorflow:gpu")
    if device == "gpu" and not _tf().config.list_physical_devices("GPU"):
        raise TargetError(f"target={name!r}: TensorFlow sees no GPU (tf.config.list_physical_devices('GPU') is empty)")
    _tf()  # imported here, once: seconds that no call's timeout should count
    functions = _functions(device)
    setup = f"from refconv.conformance import adapters\ntarget = adapters.get({name!r}).function({{op!r}})"
    target = Target(name, lambda op: functions[op], capabilities, setup, spec=name)
    target.environment = lambda: environment(device)
    if device == "cpu":  # oneDNN runs the CPU's float32 kernels only
        target.isolated = isolated  # type: ignore[attr-defined]
    return target
