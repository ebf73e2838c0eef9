"""Verified shape inference: check another tool's output-shape function on every size.

``check_shape(target, op=..., dims=..., padding=..., box=...)`` runs every case
of a box of small parameters through a shape function
``f(op, input_shape, weight_shape, **params) -> output_shape`` (or a built-in
shape adapter, :mod:`refconv.conformance.shape_adapters`), compares each
answer, and each refusal, with the definition (:mod:`refconv.shapes`,
:mod:`refconv.params`), and returns a :class:`ShapeReport`: the smallest
counterexample, or agreement on the whole box, which for rules that are floors
or ceilings of affine functions of the size is agreement for every size
(``specs/shapes.md``, section 7).

>>> from refconv.conformance.shapecheck import check_shape
>>> check_shape('refconv.summary', op='conv', dims=1, padding='same').ok
True
"""

from __future__ import annotations

from .box import MODES, OPS, Box
from .check import check_shape
from .report import ASSUMPTION, Counterexample, ShapeReport
from .target import SIGNATURE, Limit, ShapeTarget, resolve

__all__ = ["check_shape", "ShapeReport", "Counterexample", "ShapeTarget", "Limit", "Box", "resolve", "OPS", "MODES",
           "SIGNATURE", "ASSUMPTION"]
