"""The verdict of check-shape: per group of cases, and the smallest counterexample with its reproduction."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

from ...atomic import atomic_write
from .box import Box

__all__ = ["ShapeReport", "Group", "Counterexample", "ASSUMPTION"]

#: the assumption under which agreement on the box proves agreement for every size
ASSUMPTION = (
    "assumed of the target (a black box): for each configuration (everything but the sizes) it refuses the "
    "sizes below some threshold and from there on its output length on an axis grows by a fixed amount "
    "whenever the size grows by lcm(s, d), as every floor or ceiling of an affine function of the size with a "
    "divisor of lcm(s, d) does; an axis's output depends only on that axis's size and parameters, and a call "
    "is refused when one of its axes is (specs/shapes.md, section 7)"
)


@dataclass
class Counterexample:
    """One case where the target and the definition disagree."""

    op: str
    dims: int
    mode: str
    input_shape: tuple[int, ...]
    weight_shape: tuple[int, ...]
    params: dict[str, Any]
    expected: tuple[int, ...] | None
    refusal: str            # the definition's reason when it refuses ('' otherwise)
    got: Any                # the target's output shape, or None when it raised
    error: str              # the target's exception, as 'Type: message'
    kind: str               # 'wrong shape', 'refuses a valid configuration', 'accepts ... the definition refuses', 'not a shape'
    order: tuple[int, ...] = ()  # (total size, dims, the case's integers...): smaller is smaller

    def call(self) -> str:
        """The call of the shape function, as Python source."""
        kw = ", ".join(f"{k}={v!r}" for k, v in self.params.items())
        return f"shape_fn({self.op!r}, {self.input_shape!r}, {self.weight_shape!r}, {kw})"

    def __str__(self) -> str:
        exp = f"{self.expected}" if self.expected is not None else f"refused ({self.refusal})"
        if self.error == "":
            got = f"{self.got}"
        elif self.kind == self.error:  # the call raised SystemExit or hung: not a refusal
            got = self.error
        else:
            got = f"refused ({self.error})"
        return f"{self.kind}: {self.call()}\n    definition: {exp}\n    target:     {got}"


@dataclass
class Group:
    """The cases of one op, dimension count and padding mode."""

    op: str
    dims: int
    mode: str
    cases: int = 0
    run: int = 0
    refusals: int = 0                 # cases run that the definition refuses
    failures: int = 0
    excluded: dict[str, int] = field(default_factory=dict)   # declared limit -> cases not run
    configs: int = 0                  # configurations of the varying axis (per axis)
    proved: int = 0                   # configurations proved for every size
    refused_everywhere: int = 0       # configurations the definition refuses at every size of the box
    not_run: int = 0                  # configurations whose every case a declared limit left out
    counterexample: Counterexample | None = None

    def line(self) -> str:
        head = f"{self.op} {self.dims}-D {self.mode}:"
        if not self.run:
            return f"{head} nothing run: " + "; ".join(f"{n} cases {r}" for r, n in self.excluded.items())
        if self.failures:
            tail = f"{self.failures} of {self.run} cases disagree"
        else:
            tail = f"{self.run} cases agree ({self.refusals} refused by both)" if self.refusals else f"{self.run} cases agree"
        if self.run and not self.failures:
            tail += f"; {self.proved} of {self.configs - self.not_run} axis configurations run proved for every size"
        for reason, count in self.excluded.items():
            tail += f"; {count} not run: {reason}"
        c = self.counterexample
        if c is not None:
            exp = c.expected if c.expected is not None else "refused"
            got = c.got if c.error == "" else "refused"
            tail += f"\n      smallest: {c.call()}: definition {exp}, target {got}"
        return f"{head} {tail}"


@dataclass
class ShapeReport:
    """What :func:`~refconv.conformance.shapecheck.check_shape` found."""

    target: str
    box: Box
    groups: list[Group]
    not_offered: list[str]
    setup: str
    declared: bool = True
    refusals: bool = True

    @property
    def counterexample(self) -> Counterexample | None:
        """The smallest counterexample of all groups (total size, then lexicographic), or None."""
        found = [g.counterexample for g in self.groups if g.counterexample is not None]
        return min(found, key=lambda c: c.order) if found else None

    @property
    def ok(self) -> bool:
        """True when every case run agrees (and at least one ran)."""
        return self.run > 0 and all(g.failures == 0 for g in self.groups)

    @property
    def run(self) -> int:
        return sum(g.run for g in self.groups)

    def claim(self) -> str:
        """The verdict sentence: agreement on the box and for which sizes it is proved, or the counterexample."""
        if not self.ok:
            return "disagrees"
        configs = sum(g.configs - g.not_run for g in self.groups)
        proved = sum(g.proved for g in self.groups)
        everywhere = sum(g.refused_everywhere for g in self.groups)
        unrun = sum(g.not_run for g in self.groups)
        sizes = "for all n >= 1" if self.refusals else "for every n the definition accepts (refusals not checked)"
        text = f"agrees on the whole box ({self.run} cases); for rules of that form, {sizes}"
        if proved == configs - everywhere:
            text += f" in every configuration run that the definition accepts at some size ({proved})"
        else:
            text += (f" in {proved} of the {configs - everywhere} configurations run that the definition accepts at "
                     "some size (the others: some of their cases not run, or the box too small: Box.needed_size)")
        if unrun:
            text += f"; {unrun} configurations not run (declared limits)"
        if everywhere and self.refusals:
            text += f"; {everywhere} configurations refused at every size agree on the box only"
        return text

    def reproduction(self) -> str:
        c = self.counterexample
        if c is None:
            return ""
        return f"{self.setup}\n{c.call()}"

    def __str__(self) -> str:
        verdict = "AGREES" if self.ok else "COUNTEREXAMPLE"
        lines = [f"check-shape {self.target}: {verdict}"]
        c = self.counterexample
        if c is not None:
            lines += ["", f"smallest counterexample ({c.op} {c.dims}-D {c.mode}; smallest by total size, then "
                      "lexicographic):", "  " + str(c).replace("\n", "\n  "), "", "reproduce:",
                      "  " + self.reproduction().replace("\n", "\n  "), ""]
        lines.append("box: " + ", ".join(f"{k}={v}" for k, v in asdict(self.box).items())
                     + ("" if self.declared else "; declared limits ignored")
                     + ("" if self.refusals else "; refusals not checked (only configurations the definition accepts)"))
        lines += ["  " + g.line() for g in self.groups]
        for what in self.not_offered:
            lines.append(f"  {what}: not offered by the target (not checked)")
        if self.ok:
            lines += ["", self.claim(), ASSUMPTION]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        c = self.counterexample
        return {"target": self.target, "ok": self.ok, "claim": self.claim(), "assumption": ASSUMPTION,
                "box": asdict(self.box), "declared_limits_honoured": self.declared, "refusals_checked": self.refusals,
                "groups": [{k: v for k, v in asdict(g).items() if k != "counterexample"} for g in self.groups],
                "not_offered": self.not_offered,
                "counterexample": None if c is None else {**{k: v for k, v in asdict(c).items() if k != "order"}, "call": c.call()},
                "reproduction": self.reproduction()}

    def save_json(self, path: str) -> None:
        """Write :meth:`to_dict` as JSON, atomically (temporary file, then ``os.replace``)."""
        atomic_write(path, json.dumps(self.to_dict(), indent=2, default=str))
