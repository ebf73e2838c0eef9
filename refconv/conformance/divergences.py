"""Known divergences: failures of a library that are found, explained and recorded, never routed around.

An entry names a target (an adapter, or a prefix of its variants), the ops,
a reason (with the section of ``specs/conventions.md`` that reproduces it)
and, optionally, a predicate ``when`` from :data:`PREDICATES` that says which
failing cases it explains.  A failure is a *known divergence* only when its
(shrunk) case satisfies the predicate: a new bug of the same library in the
same op stays an ordinary failure.  Entries without ``when`` (as user files
for the pytest plugin usually have) match every case of their target, op,
dims and dtype.

The check still fails on a known divergence (exit 1, marked
"known divergence: <id>"); ``check(..., allow_known=True)`` /
``refconv check --allow-known`` / the plugin's divergence file accept it.

Examples
--------
>>> from refconv.conformance.cases import Case
>>> case = Case('avg_pool', spatial=(8,), kernel=(1,), stride=(4,), padding=((0, 0),))
>>> [d.id for d in find('onnxruntime', case, load())]
['ort-same-negative-total']
>>> find('onnxruntime.explicit', case, load())
[]
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Callable

from .cases import Case

__all__ = ["Divergence", "PREDICATES", "load", "find", "PACKAGED"]

PACKAGED = os.path.join(os.path.dirname(__file__), "known_divergences.json")


def _ort_auto_pad(target: str, case: Case) -> str:
    """The ``auto_pad`` the ONNX Runtime adapter ``target`` sends for ``case`` ('' for explicit pads)."""
    if target == "onnxruntime.explicit" or case.op not in ("conv", "max_pool", "avg_pool"):
        return ""
    if case.op == "conv" and any(d != 1 for d in case.dilation) or getattr(case, "ceil_mode", False):
        return ""
    from .adapters.onnx_adapter import padding_attrs

    dil = case.dilation if case.op in ("max_pool", "avg_pool") else (1,) * case.dims
    return padding_attrs(case.padding, case.spatial, case.kernel, case.stride, dil).get("auto_pad", "")


def _ort_same_negative_total(target: str, case: Case) -> bool:
    # the ONNX formula (ceil(n/s) - 1)*s + d*(k-1) + 1 - n, unclamped, is negative on some axis
    if not _ort_auto_pad(target, case).startswith("SAME"):
        return False
    dil = case.dilation if case.op in ("max_pool", "avg_pool") else (1,) * case.dims
    return any((-(-n // s) - 1) * s + d * (k - 1) + 1 - n < 0
               for n, k, s, d in zip(case.spatial, case.kernel, case.stride, dil))


def _ort_same_with_dilation(target: str, case: Case) -> bool:
    return _ort_auto_pad(target, case).startswith("SAME") and any(d != 1 for d in case.dilation)


def _window_in_padding(target: str, case: Case) -> bool:
    """Some pooling window holds padding only (possible when the padding is at least the dilation)."""
    from ..shapes import pool_output_size

    for n, k, s, (lo, hi), d in zip(case.spatial, case.kernel, case.stride, case.padding, case.dilation):
        for p in range(pool_output_size(n, k, s, (lo, hi), d, case.ceil_mode)):
            # window p reads padded positions p*s + j*d; the input occupies [lo, lo + n)
            if all(not lo <= p * s + j * d < lo + n for j in range(k)):
                return True
    return False


def _excluded_window_in_padding(target: str, case: Case) -> bool:
    """An average-pooling window of padding only whose divisor excludes the padding (0/0: NaN by definition)."""
    return not getattr(case, "count_include_pad", True) and _window_in_padding(target, case)


def _window_beyond_input(target: str, case: Case) -> bool:
    """A configuration the definition rejects because a (dilated) window is longer than the padded input."""
    if not getattr(case, "expect_refusal", False):
        return False
    return any(d * (k - 1) + 1 > n + lo + hi
               for n, k, (lo, hi), d in zip(case.spatial, case.kernel, case.padding, case.dilation))


def _subnormal_values(target: str, case: Case) -> bool:
    """The inputs, or their products and sums, lie in the subnormal range of the dtype (flushed by FTZ/DAZ)."""
    return case.values in ("subnormal", "subnormal_products")


def _float32_requantization(target: str, case: Case) -> bool:
    """Requantizing through float32 changes some output of the case (a quantized case)."""
    from .quantized_ops import differs_by_rounding

    return differs_by_rounding(case, "float32")


def _gemmlowp_rounding(target: str, case: Case) -> bool:
    """gemmlowp's fixed-point requantization changes some output of the case (a quantized case)."""
    from .quantized_ops import differs_by_rounding

    return differs_by_rounding(case, "gemmlowp")


def _beyond_int32(target: str, case: Case) -> bool:
    """Some exact accumulator of the (quantized) case lies outside int32."""
    from .quantized_ops import accumulator_beyond_int32

    return accumulator_beyond_int32(case)


def _fractional_starts(dtype: str) -> Callable[[str, Case], bool]:
    def when(target: str, case: Case) -> bool:
        """PyTorch's interval arithmetic in the dtype moves some window start of the (fractional pooling) case."""
        from .extra_ops import starts_differ

        return starts_differ(case, dtype)

    return when


#: name -> predicate(target_name, case): the cases an entry explains
PREDICATES: dict[str, Callable[[str, Case], bool]] = {
    "ort_same_negative_total": _ort_same_negative_total,
    "ort_same_with_dilation": _ort_same_with_dilation,
    "window_in_padding": _window_in_padding,
    "excluded_window_in_padding": _excluded_window_in_padding,
    "window_beyond_input": _window_beyond_input,
    "subnormal_values": _subnormal_values,
    "float32_requantization": _float32_requantization,
    "gemmlowp_rounding": _gemmlowp_rounding,
    "beyond_int32": _beyond_int32,
    **{f"{t}_fractional_starts": _fractional_starts(t) for t in ("float32", "float64", "bfloat16")},
}


@dataclass(frozen=True)
class Divergence:
    """One recorded divergence of a library from the definition."""

    id: str
    target: str
    reason: str
    ops: tuple[str, ...] = ()
    dims: tuple[int, ...] = ()
    dtypes: tuple[str, ...] = ()
    when: str | None = None

    def applies(self, target: str, op: str, dims: int | None = None, dtype: str | None = None) -> bool:
        """True when the entry is about this target (or a variant of it), op, dims and dtype."""
        # the adapter, a variant of it (onnxruntime.explicit) or a device of either (torch:cuda)
        if not (target == self.target or target.startswith((self.target + ".", self.target + ":"))):
            return False
        return ((not self.ops or op in self.ops) and (dims is None or not self.dims or dims in self.dims)
                and (dtype is None or not self.dtypes or dtype in self.dtypes))

    def explains(self, target: str, case: Case, dtype: str | None = None) -> bool:
        """True when the failing ``case`` of ``target`` is this divergence."""
        if not self.applies(target, case.op, case.dims, dtype):
            return False
        return self.when is None or PREDICATES[self.when](target, case)


def _entry(d: dict[str, Any], source: str) -> Divergence:
    from ..params import ConvParamError

    def tup(v: Any) -> tuple:
        return () if v is None else tuple(v) if isinstance(v, (list, tuple)) else (v,)

    if not isinstance(d, dict) or "target" not in d or "reason" not in d:
        raise ConvParamError(f"divergences={source!r}: each entry needs 'target' and 'reason', got {d!r}")
    when = d.get("when")
    if when is not None and when not in PREDICATES:
        raise ConvParamError(f"divergences={source!r}: when={when!r} is not one of {', '.join(PREDICATES)}")
    ops = tup(d.get("ops", d.get("op")))
    return Divergence(id=str(d.get("id") or f"{d['target']}-{'-'.join(ops) or 'all'}"), target=d["target"],
                      reason=d["reason"], ops=ops, dims=tup(d.get("dims")), dtypes=tup(d.get("dtypes", d.get("dtype"))),
                      when=when)


def load(path: str | os.PathLike | None = None, *, packaged: bool = True) -> list[Divergence]:
    """The packaged entries (unless ``packaged=False``) plus those of the JSON file ``path``.

    The file holds ``{"divergences": [{"target": ..., "op": ..., "reason": ...}, ...]}``.
    """
    from ..params import ConvParamError

    out: list[Divergence] = []
    for p in ([PACKAGED] if packaged else []) + ([os.fspath(path)] if path is not None else []):
        try:
            with open(p) as f:
                data = json.load(f)
        except OSError as exc:
            raise ConvParamError(f"divergences={p!r}: cannot read it ({exc.strerror})") from None
        except ValueError as exc:
            raise ConvParamError(f"divergences={p!r}: not JSON ({exc})") from None
        entries = data.get("divergences") if isinstance(data, dict) else None
        if not isinstance(entries, list):
            raise ConvParamError(f"divergences={p!r}: expected an object with a list 'divergences'")
        out += [_entry(e, p) for e in entries]
    return out


def find(target: str, case: Case, entries: list[Divergence], dtype: str | None = None) -> list[Divergence]:
    """The entries that explain the failing ``case`` of ``target``."""
    return [e for e in entries if e.explains(target, case, dtype)]
