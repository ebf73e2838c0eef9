"""JAX adapter: ``lax.conv_general_dilated``, ``lax.reduce_window`` and ``jax.vjp`` for the gradients.

Layouts NCHW / OIHW via ``dimension_numbers``; padding pairs pass through.
Average pooling is ``reduce_window(add) / prod(kernel_size)``: JAX has no
divisor rule of its own, so only ``count_include_pad=True`` without
``ceil_mode`` is declared.  Max pooling pads with ``-inf``; no ``ceil_mode``.
Transposed convolution is the ``jax.vjp`` of the forward convolution (the
adjoint), plus the bias.  Max unpooling is a scatter into zeros, as a JAX
user writes it: ``jnp.zeros(...).at[n, c, flat index].set(y)`` on each
``(n, c)`` plane flattened; the scatter validates nothing (an index past the
plane is dropped), so the configurations the definition rejects are not
offered.  Unbatched inputs are not offered (``lax.conv_general_dilated`` and
``reduce_window`` here take ``(N, C, *S)``).  float64 checks switch on
``jax_enable_x64``.
"""

from __future__ import annotations

import math

import numpy as np

from ..cases import ALL, Capabilities
from ..targets import Target

SETUP = "from refconv.conformance import adapters\ntarget = adapters.get('jax').function({op!r})"


def _jax(x=None):
    import jax

    if x is not None and getattr(x, "dtype", None) == np.float64 and not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)  # float64 arrays stay float64 only with x64 on
    return jax


def _dn(d: int) -> tuple[str, str, str]:
    """lax's dimension numbers of a ``d``-D convolution (d <= 3: the spatial names D, H, W)."""
    if not 1 <= d <= 3:
        raise ValueError(f"dims={d}: lax dimension numbers are spelled here for 1 to 3 spatial axes")
    sp = "DHW"[-d:]
    return ("NC" + sp, "OI" + sp, "NC" + sp)


def _conv(x, w, stride, padding, dilation, groups):
    jax = _jax(x)
    return jax.lax.conv_general_dilated(x, w, tuple(stride), [tuple(p) for p in padding], rhs_dilation=tuple(dilation),
                                        feature_group_count=groups, dimension_numbers=_dn(len(stride)),
                                        precision=jax.lax.Precision.HIGHEST)


def _bias(y, b, d):
    return y if b is None else y + np.asarray(b).reshape((1, -1) + (1,) * d)


def conv(x, w, b, *, stride, padding, dilation, groups):
    return np.asarray(_bias(_conv(x, w, stride, padding, dilation, groups), b, len(stride)))


def conv_grad_input(dy, w, input_shape, *, stride, padding, dilation, groups):
    jax = _jax(dy)
    x0 = np.zeros(tuple(input_shape), dtype=dy.dtype)
    _, vjp = jax.vjp(lambda x: _conv(x, w, stride, padding, dilation, groups), x0)
    return np.asarray(vjp(dy)[0])


def conv_grad_weight(x, dy, weight_shape, *, stride, padding, dilation, groups):
    jax = _jax(x)
    w0 = np.zeros(tuple(weight_shape), dtype=x.dtype)
    _, vjp = jax.vjp(lambda w: _conv(x, w, stride, padding, dilation, groups), w0)
    return np.asarray(vjp(dy)[0])


def conv_transpose(x, w, b, *, stride, padding, output_padding, dilation, groups):
    from ... import shapes

    out = [shapes.conv_transpose_output_size(n, k, s, p, op, d)
           for n, k, s, p, op, d in zip(x.shape[2:], w.shape[2:], stride, padding, output_padding, dilation)]
    cout = w.shape[1] * groups
    # (C_in, C_out/g, *K) is the forward weight (C_out_fwd, C_in_fwd/g, *K) of the convolution being transposed
    y = conv_grad_input(x, w, (x.shape[0], cout, *out), stride=stride, padding=padding, dilation=dilation, groups=groups)
    return np.asarray(_bias(y, b, len(stride)))


def max_pool(x, kernel_size, *, stride, padding, dilation, ceil_mode):
    jax = _jax(x)
    y = jax.lax.reduce_window(x, -np.inf, jax.lax.max, (1, 1, *kernel_size), (1, 1, *stride),
                              [(0, 0), (0, 0), *[tuple(p) for p in padding]], window_dilation=(1, 1, *dilation))
    return np.asarray(y).astype(x.dtype)


def avg_pool(x, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    jax = _jax(x)
    s = jax.lax.reduce_window(x, 0.0, jax.lax.add, (1, 1, *kernel_size), (1, 1, *stride),
                              [(0, 0), (0, 0), *[tuple(p) for p in padding]])
    return np.asarray(s / math.prod(kernel_size)).astype(x.dtype)


def _vjp(f, primal, dy):
    """``jax.vjp`` of ``f`` at ``primal``, applied to ``dy`` (the gradient a JAX user computes)."""
    jax = _jax(dy)
    _, back = jax.vjp(f, primal)
    return np.asarray(back(dy)[0])


def conv_grad_bias(dy):
    d = dy.ndim - 2
    # the bias broadcast over the batch and the positions, as a JAX model adds it
    return _vjp(lambda b: np.zeros(dy.shape, dy.dtype) + b.reshape((1, -1) + (1,) * d),
                np.zeros((dy.shape[1],), dy.dtype), dy)


def _transposed(x, w, stride, padding, output_padding, dilation, groups, out_shape):
    """The transposed convolution as JAX computes it: the vjp of the forward convolution (traceable)."""
    jax = _jax()
    _, back = jax.vjp(lambda z: _conv(z, w, stride, padding, dilation, groups), jax.numpy.zeros(out_shape, x.dtype))
    return back(x)[0]


def _transposed_shape(x_shape, w_shape, stride, padding, output_padding, dilation, groups):
    from ... import shapes

    out = [shapes.conv_transpose_output_size(n, k, s, p, op, d)
           for n, k, s, p, op, d in zip(x_shape[2:], w_shape[2:], stride, padding, output_padding, dilation)]
    return (x_shape[0], w_shape[1] * groups, *out)


def conv_transpose_grad_input(dy, w, *, stride, padding, output_padding, dilation, groups):
    # x's shape: the adjoint convolution's output, less floor(op / s) trailing samples (op < s here: none)
    x_shape = (dy.shape[0], w.shape[0], *[(m + lo + hi - d * (k - 1) - 1 - op) // s + 1 for m, (lo, hi), d, k, op, s in
                                          zip(dy.shape[2:], padding, dilation, w.shape[2:], output_padding, stride)])
    return _vjp(lambda x: _transposed(x, w, stride, padding, output_padding, dilation, groups, dy.shape),
                np.zeros(x_shape, dy.dtype), dy)


def conv_transpose_grad_weight(x, dy, weight_shape, *, stride, padding, output_padding, dilation, groups):
    return _vjp(lambda w: _transposed(x, w, stride, padding, output_padding, dilation, groups, dy.shape),
                np.zeros(tuple(weight_shape), x.dtype), dy)


def max_pool_grad(dy, x, kernel_size, *, stride, padding, dilation, ceil_mode):
    jax = _jax(x)
    return _vjp(lambda v: jax.lax.reduce_window(v, -np.inf, jax.lax.max, (1, 1, *kernel_size), (1, 1, *stride),
                                                [(0, 0), (0, 0), *[tuple(p) for p in padding]],
                                                window_dilation=(1, 1, *dilation)), x, dy)


def avg_pool_grad(dy, input_shape, kernel_size, *, stride, padding, ceil_mode, count_include_pad):
    jax = _jax(dy)
    return _vjp(lambda v: jax.lax.reduce_window(v, 0.0, jax.lax.add, (1, 1, *kernel_size), (1, 1, *stride),
                                                [(0, 0), (0, 0), *[tuple(p) for p in padding]]) / math.prod(kernel_size),
                np.zeros(tuple(input_shape), dy.dtype), dy)


def max_unpool(y, indices, kernel_size, *, stride, padding, output_size):
    jax = _jax(y)
    jnp = jax.numpy
    n, c = y.shape[:2]
    # each (n, c) plane flattened: out[n, c, indices[n, c, p]] = y[n, c, p], zeros elsewhere
    flat = jnp.zeros((n, c, math.prod(output_size)), dtype=y.dtype)
    m = math.prod(y.shape[2:])  # pooled positions per plane (an empty batch included)
    idx = jnp.asarray(np.asarray(indices, dtype=np.int64).reshape(n, c, m))
    flat = flat.at[jnp.arange(n)[:, None, None], jnp.arange(c)[None, :, None], idx].set(jnp.asarray(y).reshape(n, c, m))
    return np.asarray(flat.reshape(n, c, *output_size))


FUNCTIONS = {f.__name__: f for f in (conv, conv_transpose, max_pool, avg_pool, conv_grad_input, conv_grad_weight,
                                     conv_grad_bias, conv_transpose_grad_input, conv_transpose_grad_weight,
                                     max_pool_grad, avg_pool_grad, max_unpool)}


def capabilities(op: str, dims: int, dtype: str) -> Capabilities:
    base = ALL.replace(dtypes=("float32", "float64"), ops=tuple(FUNCTIONS), divisor_override=False)
    if op in ("conv_transpose", "conv_transpose_grad_input", "conv_transpose_grad_weight"):
        # as the adjoint of a forward convolution, output_padding must stay below the stride
        return base.replace(rule=lambda c: all(o < st for o, st in zip(c.output_padding, c.stride)),
                            notes=("output_padding >= stride (not the adjoint of any forward convolution)",))
    if op == "max_pool_grad":
        return base.replace(ceil_mode=False, dilation=False,
                            notes=("max_pool_grad with dilation (JAX has no VJP of a dilated max reduce_window)",))
    if op == "max_pool":
        return base.replace(ceil_mode=False)
    if op in ("avg_pool", "avg_pool_grad"):
        return base.replace(ceil_mode=False, dilation=False, count_include_pad=(True,))
    if op == "max_unpool":
        return base.replace(refuses_invalid=False, notes=(
            "max_unpool configurations the definition rejects (the scatter drops an index past the plane)",))
    return base


def environment(device: str = "cpu") -> list[str]:
    """The platform the calls run on and the precision the adapter asks of XLA."""
    jax = _jax()
    dev = jax.devices(device)[0]
    return [f"jax {jax.__version__} on {dev.platform} ({dev.device_kind}): convolutions with "
            "precision=lax.Precision.HIGHEST (no TF32 / bfloat16 passes on GPUs), "
            f"jax_default_matmul_precision={jax.config.jax_default_matmul_precision}"]


def _on(device: str, fn):
    # every call runs with the device as JAX's default (inputs are placed there, results come back as numpy)
    def call(*args, **kwargs):
        jax = _jax()
        with jax.default_device(jax.devices(device)[0]):
            return fn(*args, **kwargs)

    return call


def make(name: str = "jax") -> Target:
    """The adapter ``jax`` (the CPU) or ``jax:gpu``."""
    base, _, device = name.partition(":")
    if base != "jax" or device not in ("", "cpu", "gpu"):
        raise ValueError(f"name={name!r}: the JAX adapters are jax and jax:gpu")
    device = device or "cpu"
    if device == "gpu":
        from ..targets import TargetError

        try:
            _jax().devices("gpu")
        except RuntimeError:
            raise TargetError(f"target={name!r}: JAX sees no GPU (jax.devices('gpu') raises)") from None
        functions = {op: _on(device, f) for op, f in FUNCTIONS.items()}
        setup = SETUP.replace("'jax'", repr(name))
        target = Target(name, lambda op: functions[op], capabilities, setup, spec=name)
    else:
        target = Target("jax", lambda op: FUNCTIONS[op], capabilities, SETUP, spec="jax")
    target.environment = lambda: environment(device)
    return target
