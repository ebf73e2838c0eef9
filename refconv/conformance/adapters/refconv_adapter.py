"""Adapters for refconv's own engines: ``refconv.fast`` (the vectorized engine) and ``refconv.oracle``.

Both expose the canonical functions with the same signatures, so the adapter
only binds names.  The oracle is correctly rounded, so it passes every
profile; the fast engine must pass its own suite.
"""

from __future__ import annotations

from ..cases import ALL, Capabilities
from ..targets import Target


def make(name: str) -> Target:
    module = name  # 'refconv.fast' or 'refconv.oracle'

    def functions(op: str):
        # the registry's record names each engine's function (an op may live outside the module's namespace)
        from .. import registry

        rec = registry.get(op)
        return rec.fast_function() if module == "refconv.fast" else rec.oracle_function()

    def caps(op: str, dims: int, dtype: str) -> Capabilities:
        # the fast engine computes in float32 or float64 and rejects narrower inputs by design; both engines take
        # PyTorch's unbatched inputs (refconv.params.accepts_unbatched)
        both = ALL.replace(unbatched=True)
        return both.replace(dtypes=("float64", "float32")) if module == "refconv.fast" else both

    setup = f"from {module} import {{op}} as target"
    return Target(name, functions, caps, setup, spec=name)
