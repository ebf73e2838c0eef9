"""The fast engine: vectorized numpy versions of every :mod:`refconv.oracle` function.

Same functions, same signatures, same :class:`~refconv.params.ConvParamError`
for bad parameters (validation is the one shared path of :mod:`refconv.params`),
plus the keywords ``algorithm='auto' | 'direct' | 'fft' | 'winograd'`` (convolutions) and
``max_memory`` (bytes a call may allocate; see :mod:`refconv.fast.memory`).

* dtypes (:mod:`refconv.fast.dtypes`): float32, float64, complex64,
  complex128 computed in that dtype; integers exactly in int64 (convolution
  family) or a :class:`DTypeError`.
* accuracy: the direct path meets the per-element bound of
  :mod:`refconv.tolerance`; with ``algorithm='direct'``, integer-valued floats
  whose partial sums are exact give exactly the oracle's result.
* determinism: every element's summation order is fixed by the shapes (and the
  memory cap), never by the thread count or the run (:mod:`refconv.fast.parallel`).
* memory: everything a call allocates -- its result, converted inputs and the
  temporaries in flight -- stays under a cap (default 256 MiB; ``max_memory=``
  per call or :func:`memory_cap` for a block), chunked over the batch, then
  over output rows; :class:`MemoryCapError` before allocating when the result,
  or one chunk next to it, cannot fit (a padding of ``10**10`` is refused, not
  attempted).  The large temporaries of the Winograd path are reused from
  buffers each thread keeps between calls (at most 32 MiB and an eighth of the
  cap: :mod:`refconv.fast.scratch`), so that a repeated call does not fault
  fresh memory in.
* algorithms (:mod:`refconv.fast.direct`, :mod:`refconv.fast.fft`,
  :mod:`refconv.fast.winograd`): im2col (channels-last for small planes) +
  single-threaded GEMMs on a fixed partition run by a few threads, per-tap
  kernels for depthwise convolutions, scipy.fft for large kernels, Winograd
  ``F(4x4, 3x3)`` for stride-1 3x3 layers (within
  :func:`refconv.tolerance.winograd_conv_error_bound`, not exact on integer-valued
  floats); ``algorithm='auto'`` follows :func:`refconv.fast.fft.prefer_fft` and
  :func:`refconv.fast.conv.prefer_winograd` (wide 3x3 layers on large planes;
  integer inputs always exact), and falls back to the direct kernels when the
  chosen algorithm's smallest chunk exceeds the cap.

Also :func:`general_conv` (input dilation, negative padding) as in the oracle;
:func:`conv_backward`, all gradients of one convolution from one call (the
weight gradient on a worker thread while the caller computes the input
gradient: :mod:`refconv.fast.backward`);
``padding_mode='zeros' | 'reflect' | 'replicate' | 'circular'`` on :func:`conv`
and both of its gradients (the input padded as the mode says, then no padding;
the input gradient folded back by the mode's adjoint, exact on integers); and
PyTorch's unbatched inputs ``(C, *S)`` wherever the oracle takes them
(:func:`refconv.params.accepts_unbatched`).

Examples
--------
>>> import numpy as np
>>> from refconv import fast
>>> fast.convolve([1., 2., 3., 4.], [5., 6., 7.]).tolist()
[5.0, 16.0, 34.0, 52.0, 45.0, 28.0]
>>> x = np.ones((1, 3, 32, 32), np.float32)
>>> fast.conv(x, np.ones((6, 3, 5, 5), np.float32)).shape
(1, 6, 28, 28)
>>> fast.conv(np.array([[1, 2, 3]]), np.array([[[1, 1]]]), padding=1, padding_mode='reflect').tolist()  # (C, L)
[[3, 3, 5, 5]]
"""

from .conv import ALGORITHMS, conv, conv_grad_bias, conv_grad_input, conv_grad_weight, conv_transpose, general_conv
from .dtypes import DTypeError
from .memory import DEFAULT_MEMORY_CAP, MemoryCapError, get_memory_cap, memory_cap
from .pool import avg_pool, avg_pool_grad, max_pool, max_pool_grad
from .signal import convolve, correlate

__all__ = [
    "conv",
    "conv_transpose",
    "max_pool",
    "avg_pool",
    "conv_grad_input",
    "conv_grad_weight",
    "conv_grad_bias",
    "max_pool_grad",
    "avg_pool_grad",
    "convolve",
    "correlate",
    "general_conv",
    "ALGORITHMS",
    "DTypeError",
    "MemoryCapError",
    "DEFAULT_MEMORY_CAP",
    "get_memory_cap",
    "memory_cap",
]

# max pooling with indices, L_p and adaptive pooling (refconv.fast.pool_extra)
from .pool_extra import adaptive_avg_pool, adaptive_max_pool, lp_pool, max_pool_indices  # noqa: E402

__all__ += ["max_pool_indices", "lp_pool", "adaptive_avg_pool", "adaptive_max_pool"]

# the transposed convolution's gradients and max unpooling (refconv.fast.ops_extra)
from .ops_extra import conv_transpose_grad_input, conv_transpose_grad_weight, max_unpool  # noqa: E402

__all__ += ["conv_transpose_grad_input", "conv_transpose_grad_weight", "max_unpool"]

# quantized convolution: ConvInteger, QLinearConv and the requantization, exact (refconv.fast.quantized)
from .quantized import conv_integer, qlinear_conv, requantize  # noqa: E402

__all__ += ["conv_integer", "qlinear_conv", "requantize"]

# PyTorch's unbatched inputs (C, *S) wherever the oracle takes them, through the one validation of refconv.params:
# N = 1 added to the arrays named, and dropped from the result
from ..params import accepts_unbatched as _unb, per_axis_rank as _axes, weight_rank as _wrank  # noqa: E402

_window = _axes("kernel_size", "stride", "dilation")
conv = _unb(("x",), _wrank())(conv)
conv_transpose = _unb(("x",), _wrank())(conv_transpose)
max_pool = _unb(("x",), _window)(max_pool)
max_pool_grad = _unb(("x", "dy"), _window)(max_pool_grad)
max_pool_indices = _unb(("x",), _window)(max_pool_indices)
avg_pool = _unb(("x",), _window)(avg_pool)
lp_pool = _unb(("x",), _window)(lp_pool)
adaptive_avg_pool = _unb(("x",), _axes("output_size"))(adaptive_avg_pool)
adaptive_max_pool = _unb(("x",), _axes("output_size"))(adaptive_max_pool)
max_unpool = _unb(("y", "indices"), _axes("kernel_size", "stride"))(max_unpool)

# fractional max pooling and deformable convolution (refconv.fast.fractional, refconv.fast.deform)
from .deform import deform_conv  # noqa: E402
from .fractional import fractional_max_pool  # noqa: E402

__all__ += ["fractional_max_pool", "deform_conv"]

# layout= and weight_layout= on every public function (refconv.layouts): arguments converted to the
# canonical layouts (N, C, *S) and (C_out, C_in/g, *K), results returned in the caller's layouts
from ..layouts import accepts_layouts as _layouts  # noqa: E402

conv = _layouts(x="activation", w="weight")(conv)
general_conv = _layouts(x="activation", w="weight")(general_conv)
conv_transpose = _layouts(x="activation", w="transposed_weight")(conv_transpose)
conv_grad_input = _layouts(dy="activation", w="weight", input_shape="activation_shape")(conv_grad_input)
conv_grad_weight = _layouts("weight", x="activation", dy="activation", weight_shape="weight_shape")(conv_grad_weight)
conv_grad_bias = _layouts(None, dy="activation")(conv_grad_bias)
max_pool = _layouts(x="activation")(max_pool)
avg_pool = _layouts(x="activation")(avg_pool)
max_pool_grad = _layouts(dy="activation", x="activation")(max_pool_grad)
avg_pool_grad = _layouts(dy="activation", input_shape="activation_shape")(avg_pool_grad)
max_pool_indices = _layouts(x="activation")(max_pool_indices)
lp_pool = _layouts(x="activation")(lp_pool)
adaptive_avg_pool = _layouts(x="activation")(adaptive_avg_pool)
adaptive_max_pool = _layouts(x="activation")(adaptive_max_pool)
fractional_max_pool = _layouts(x="activation")(fractional_max_pool)
deform_conv = _layouts(x="activation", offset="activation", w="weight", mask="activation")(deform_conv)

# both gradients of a convolution at once (refconv.fast.backward), over the public functions above
from .backward import conv_backward  # noqa: E402

__all__ += ["conv_backward"]
