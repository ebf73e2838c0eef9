r"""Backprop of the convolution layer, derived by sympy and equal to the closed-form rules.

For concrete sizes, every entry of ``x``, ``w``, ``b`` and of the upstream
gradient ``g`` is a sympy symbol; ``y`` is computed by the oracle, the loss is
:math:`L = \sum g \cdot y`, and sympy differentiates it.  The closed forms,
evaluated with the oracle's general operation
(:func:`refconv.oracle.general_conv`), are:

* :math:`\partial L/\partial x`: the transposed convolution of ``g`` with the
  flipped, channel-transposed kernel: input dilation = stride, stride 1,
  dilation ``d``, padding ``d*(K-1) - lo`` before and ``d*(K-1) - hi + r`` after,
  ``r`` the trailing rows of the padded input that no window reads
  (:attr:`refconv.params.ConvParams.unread`); a negative padding crops;
* :math:`\partial L/\partial w`: the correlation of ``x`` (batch and channels
  swapped) with ``g`` as the kernel: stride ``d`` and dilation ``s`` (the two
  trade places), the forward padding, the first ``K`` outputs per axis, and of
  the channel pairs those inside one group;
* :math:`\partial L/\partial b = \sum_{n, p} g`.

>>> d = derive_conv((1, 1, 4), (1, 1, 3))
>>> d.y[0, 0].tolist()
[b0 + w0*x0 + w1*x1 + w2*x2, b0 + w0*x1 + w1*x2 + w2*x3]
>>> d.dx[0, 0].tolist()
[g0*w0, g0*w1 + g1*w0, g0*w2 + g1*w1, g1*w2]
>>> d.dw[0, 0].tolist()
[g0*x0 + g1*x1, g0*x1 + g1*x2, g0*x2 + g1*x3]
>>> d.db.tolist()
[g0 + g1]
>>> d.mismatches()
[]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import sympy as sp

from .. import oracle
from ..params import ConvParamError, ConvParams, ConvTransposeParams, conv_params, conv_transpose_params

__all__ = [
    "symbolic_array",
    "transposed_kernel",
    "grad_input_padding",
    "grad_input_rule",
    "grad_weight_rule",
    "grad_bias_rule",
    "ConvDerivation",
    "derive_conv",
    "TransposeDerivation",
    "derive_conv_transpose",
    "MAX_SYMBOLS",
]

#: the largest number of symbols (entries of x, w, b and g together) a derivation builds
MAX_SYMBOLS = 600


def symbolic_array(name: str, shape: Sequence[int], *, real: bool = True) -> np.ndarray:
    """An object array of sympy symbols named by the indices of the axes longer than one.

    >>> symbolic_array('x', (1, 1, 3)).tolist()
    [[[x0, x1, x2]]]
    >>> symbolic_array('w', (2, 1, 2)).tolist()
    [[[w0_0, w0_1]], [[w1_0, w1_1]]]
    >>> symbolic_array('b', (1,)).tolist()
    [b0]
    """
    shape = tuple(int(v) for v in shape)
    arr = np.empty(shape, dtype=object)
    keep = [i for i, n in enumerate(shape) if n > 1]
    for idx in np.ndindex(*shape):
        label = "_".join(str(idx[i]) for i in keep) or "0"
        arr[idx] = sp.Symbol(f"{name}{label}", real=real)
    return arr


def transposed_kernel(w: np.ndarray, groups: int = 1) -> np.ndarray:
    """``(C_out, C_in/G, *K)`` -> ``(C_in, C_out/G, *K)``: input and output channels swap within each group.

    ``wt[g*Cg + c, j] = w[g*Og + j, c]`` (``Cg = C_in/G``, ``Og = C_out/G``);
    the spatial taps are not flipped here (the rule flips by ``flip=True``).

    >>> transposed_kernel(np.arange(8).reshape(4, 1, 2), groups=2)[:, :, 0].tolist()
    [[0, 2], [4, 6]]
    """
    w = np.asarray(w)
    cout, cg = w.shape[:2]
    og = cout // groups
    blocks = [np.swapaxes(w[g * og : (g + 1) * og], 0, 1) for g in range(groups)]
    return np.concatenate(blocks, axis=0)


def grad_input_padding(p: ConvParams) -> tuple[tuple[int, int], ...]:
    """``(d*(K-1) - lo, d*(K-1) - hi + r)`` per axis: the padding of the input-gradient rule.

    >>> grad_input_padding(conv_params((1, 1, 7), (1, 1, 3), stride=2, padding=[(1, 0)]))   # r = 1
    ((1, 3),)
    >>> grad_input_padding(conv_params((1, 1, 6), (1, 1, 2), stride=3))    # r = 1
    ((1, 2),)
    """
    return tuple(
        (d * (k - 1) - lo, d * (k - 1) - hi + r)
        for k, d, (lo, hi), r in zip(p.kernel_spatial, p.dilation, p.padding, p.unread)
    )


def _check_forward(p: ConvParams) -> None:
    if any(a != 1 for a in p.input_dilation):
        raise ConvParamError(f"input_dilation={p.input_dilation}: the gradient rules are stated for a forward pass without input dilation")


def grad_input_rule(g: Any, w: Any, p: ConvParams) -> np.ndarray:
    """``dL/dx`` by the closed form: a transposed convolution of ``g`` through :func:`refconv.oracle.general_conv`.

    Input dilation ``s``, stride 1, dilation ``d``, padding :func:`grad_input_padding`,
    kernel :func:`transposed_kernel` flipped (unflipped when the forward pass
    already flipped it), the same groups.

    >>> p = conv_params((1, 1, 5), (1, 1, 2), stride=2)
    >>> grad_input_rule(np.array([[[1, 1]]]), np.array([[[1, 2]]]), p).tolist()
    [[[1, 2, 1, 2, 0]]]
    """
    _check_forward(p)
    g, w = np.asarray(g), np.asarray(w)
    wt = transposed_kernel(w, p.groups)
    pads = grad_input_padding(p)
    kw: dict[str, Any] = dict(stride=1, dilation=p.dilation, input_dilation=p.stride, groups=p.groups, flip=not p.flip)
    if all(lo >= 0 and hi >= 0 for lo, hi in pads):
        rule = conv_params(g.shape, wt.shape, padding=pads, **kw)
        out = oracle.general_conv(g, wt, None, rule)
    else:  # lo > d*(K-1): a negative padding crops the dilated g
        out = oracle.general_conv(g, wt, None, padding=pads, **kw)
    if out.shape != p.input_shape:  # pragma: no cover - an identity of the sizes
        raise AssertionError(f"rule shape {out.shape} != input shape {p.input_shape}")
    return out


def grad_weight_rule(x: Any, g: Any, p: ConvParams) -> np.ndarray:
    """``dL/dw`` by the closed form: correlate ``x`` with ``g``, stride and dilation trading places.

    ``R = general_conv(x^T, g^T, stride=d, dilation=s, padding=(lo, hi))`` with
    batch and channel axes swapped (``R[c, o, k] = sum_{n,p} xp[n, c, k*d + p*s] g[n, o, p]``);
    keep the first ``K`` taps per axis (``R`` has ``K + floor(r/d)``) and, for
    output channel ``o`` of group ``j``, the input channels of group ``j``.

    >>> p = conv_params((1, 1, 4), (1, 1, 2))
    >>> grad_weight_rule(np.array([[[1, 2, 3, 4]]]), np.array([[[1, 0, 1]]]), p).tolist()
    [[[4, 6]]]
    """
    _check_forward(p)
    x, g = np.asarray(x), np.asarray(g)
    xt, gt = np.swapaxes(x, 0, 1), np.swapaxes(g, 0, 1)
    rule = conv_params(xt.shape, gt.shape, stride=p.dilation, dilation=p.stride, padding=p.padding)
    full = oracle.general_conv(xt, gt, None, rule)  # (C_in, C_out, *K')
    full = full[(slice(None), slice(None)) + tuple(slice(0, k) for k in p.kernel_spatial)]
    cout, cg = p.weight_shape[:2]
    og = cout // p.groups
    dw = np.empty(p.weight_shape, dtype=full.dtype)
    for o in range(cout):
        j = o // og
        dw[o] = full[j * cg : (j + 1) * cg, o]
    if p.flip:  # the forward pass read w[K-1-k] at tap k
        dw = dw[(slice(None), slice(None)) + (slice(None, None, -1),) * p.ndim]
    return dw


def grad_bias_rule(g: Any) -> np.ndarray:
    """``dL/db[o] = sum_{n, p} g[n, o, p]``.

    >>> grad_bias_rule(np.array([[[1, 2], [3, 4]]])).tolist()
    [3, 7]
    """
    g = np.asarray(g)
    return np.sum(g, axis=(0, *range(2, g.ndim)), dtype=g.dtype)


def _grad(loss: sp.Expr, var: np.ndarray) -> np.ndarray:
    """``dL/dv`` for every symbol ``v`` of ``var``, by :func:`sympy.diff`."""
    out = np.empty(var.shape, dtype=object)
    for idx in np.ndindex(*var.shape):
        out[idx] = sp.diff(loss, var[idx])
    return out


class _RuleCheck:
    """Compares sympy's derivatives ``dx``, ``dw``, ``db`` with the rules ``rule_dx``, ``rule_dw``, ``rule_db``."""

    b: np.ndarray | None
    dx: np.ndarray
    dw: np.ndarray
    db: np.ndarray | None

    # the closed-form rules: properties of each derivation
    @property
    def rule_dx(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def rule_dw(self) -> np.ndarray:
        raise NotImplementedError

    @property
    def rule_db(self) -> np.ndarray | None:
        raise NotImplementedError

    def mismatches(self) -> list[str]:
        """Entries where sympy's derivative and the closed form differ (``expand(a - b) != 0``); empty when they agree."""
        bad = []
        pairs: list[tuple[str, Any, Any]] = [("dx", self.dx, self.rule_dx), ("dw", self.dw, self.rule_dw)]
        if self.b is not None:
            pairs.append(("db", self.db, self.rule_db))
        for name, got, rule in pairs:
            if got.shape != rule.shape:
                bad.append(f"{name}: shape {got.shape} != rule shape {rule.shape}")
                continue
            for idx in np.ndindex(*got.shape):
                if sp.expand(got[idx] - rule[idx]) != 0:
                    bad.append(f"{name}{list(idx)}: sympy {got[idx]} != rule {rule[idx]}")
        return bad


@dataclass
class ConvDerivation(_RuleCheck):
    """A convolution layer with symbolic entries, its sympy gradients and the closed-form rules."""

    params: ConvParams
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    g: np.ndarray
    y: np.ndarray
    loss: sp.Expr
    dx: np.ndarray
    dw: np.ndarray
    db: np.ndarray | None

    @property
    def rule_dx(self) -> np.ndarray:
        return grad_input_rule(self.g, self.w, self.params)

    @property
    def rule_dw(self) -> np.ndarray:
        return grad_weight_rule(self.x, self.g, self.params)

    @property
    def rule_db(self) -> np.ndarray | None:
        return None if self.b is None else grad_bias_rule(self.g)

def derive_conv(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: Any = 1,
    padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    flip: bool = False,
    bias: bool = True,
) -> ConvDerivation:
    """Symbols for ``x``, ``w``, ``b``, ``g``; ``y`` by :func:`refconv.oracle.conv`; gradients of ``sum(g*y)`` by sympy.

    Raises :class:`~refconv.params.ConvParamError` for invalid parameters and
    when the symbols would number more than :data:`MAX_SYMBOLS`.

    >>> d = derive_conv((1, 1, 3), (1, 1, 2), padding=[(1, 0)], bias=False)
    >>> d.y[0, 0].tolist()
    [w1*x0, w0*x0 + w1*x1, w0*x1 + w1*x2]
    >>> d.dx[0, 0].tolist()
    [g0*w1 + g1*w0, g1*w1 + g2*w0, g2*w1]
    """
    p = conv_params(
        input_shape, weight_shape, (weight_shape[0],) if bias else None,
        stride=stride, padding=padding, dilation=dilation, groups=groups, flip=flip,
    )
    count = int(np.prod(p.input_shape)) + int(np.prod(p.weight_shape)) + int(np.prod(p.output_shape)) + (p.weight_shape[0] if bias else 0)
    if count > MAX_SYMBOLS:
        raise ConvParamError(
            f"x.shape={p.input_shape}, w.shape={p.weight_shape}: {count} symbols (x, w, b and the output gradient) "
            f"exceed the limit of {MAX_SYMBOLS} for a symbolic derivation; use smaller sizes"
        )
    x = symbolic_array("x", p.input_shape)
    w = symbolic_array("w", p.weight_shape)
    b = symbolic_array("b", (p.weight_shape[0],)) if bias else None
    g = symbolic_array("g", p.output_shape)
    y = oracle.conv(x, w, b, stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups, flip=p.flip)
    loss = sp.expand(sp.Add(*[gi * yi for gi, yi in zip(g.flat, y.flat)]))

    return ConvDerivation(p, x, w, b, g, y, loss, _grad(loss, x), _grad(loss, w), None if b is None else _grad(loss, b))


@dataclass
class TransposeDerivation(_RuleCheck):
    """A transposed convolution with symbolic entries and its sympy gradients.

    A transposed convolution is the input gradient of the forward convolution
    ``f`` of :meth:`refconv.params.ConvTransposeParams.forward`, so
    ``L = <f^T x, g> = <x, f g>``: ``dL/dx = conv(g, w)`` (the forward pass) and
    ``dL/dw = conv_grad_weight(g, x)``, with ``g`` as the forward input and ``x``
    as its output gradient; ``dL/db = sum g``.
    """

    params: ConvTransposeParams
    x: np.ndarray
    w: np.ndarray
    b: np.ndarray | None
    g: np.ndarray
    y: np.ndarray
    loss: sp.Expr
    dx: np.ndarray
    dw: np.ndarray
    db: np.ndarray | None

    def _kw(self) -> dict:
        p = self.params
        return dict(stride=p.stride, padding=p.padding, dilation=p.dilation, groups=p.groups)

    @property
    def rule_dx(self) -> np.ndarray:
        return oracle.conv(self.g, self.w, **self._kw())

    @property
    def rule_dw(self) -> np.ndarray:
        return oracle.conv_grad_weight(self.g, self.x, self.w.shape, **self._kw())

    @property
    def rule_db(self) -> np.ndarray | None:
        return None if self.b is None else grad_bias_rule(self.g)


def derive_conv_transpose(
    input_shape: Sequence[int],
    weight_shape: Sequence[int],
    *,
    stride: Any = 1,
    padding: Any = 0,
    output_padding: Any = 0,
    dilation: Any = 1,
    groups: int = 1,
    bias: bool = True,
) -> TransposeDerivation:
    """Symbols for ``x``, ``w`` (``(C_in, C_out/G, *K)``), ``b``, ``g``; ``y`` by :func:`refconv.oracle.conv_transpose`.

    >>> d = derive_conv_transpose((1, 1, 2), (1, 1, 2), stride=2, bias=False)
    >>> d.y[0, 0].tolist()
    [w0*x0, w1*x0, w0*x1, w1*x1]
    >>> d.dx[0, 0].tolist(), d.mismatches()
    ([g0*w0 + g1*w1, g2*w0 + g3*w1], [])
    """
    cout = weight_shape[1] * groups if len(weight_shape) > 1 else 0
    p = conv_transpose_params(
        input_shape, weight_shape, (cout,) if bias else None, stride=stride, padding=padding,
        output_padding=output_padding, dilation=dilation, groups=groups,
    )
    count = int(np.prod(p.input_shape)) + int(np.prod(p.weight_shape)) + int(np.prod(p.output_shape)) + (cout if bias else 0)
    if count > MAX_SYMBOLS:
        raise ConvParamError(
            f"x.shape={p.input_shape}, w.shape={p.weight_shape}: {count} symbols (x, w, b and the output gradient) "
            f"exceed the limit of {MAX_SYMBOLS} for a symbolic derivation; use smaller sizes"
        )
    x = symbolic_array("x", p.input_shape)
    w = symbolic_array("w", p.weight_shape)
    b = symbolic_array("b", (cout,)) if bias else None
    g = symbolic_array("g", p.output_shape)
    y = oracle.conv_transpose(
        x, w, b, stride=p.stride, padding=p.padding, output_padding=p.output_padding, dilation=p.dilation, groups=p.groups
    )
    loss = sp.expand(sp.Add(*[gi * yi for gi, yi in zip(g.flat, y.flat)]))

    return TransposeDerivation(p, x, w, b, g, y, loss, _grad(loss, x), _grad(loss, w), None if b is None else _grad(loss, b))
