"""Self-test of the conformance suite: every planted bug is caught, no correct variant is flagged.

The implementations live in tests/broken/ (plain numpy, no refconv).  Each
check runs with the default budget and a fixed seed.
"""


import pytest

from refconv.conformance import check
from refconv.params import ConvParamError
from broken import BROKEN, CORRECT


_RESULTS = {}


def _result(e):
    """The report of ``e``'s check, or the ConvParamError of a bound mode check() does not accept (yet)."""
    # one check per entry per session: the summary reuses the parametrized tests' reports
    key = (e.name, id(e.fn))
    if key not in _RESULTS:
        try:
            _RESULTS[key] = check(e.fn, op=e.op, dims=e.dims, dtype=e.dtype, precision=e.precision, bound=e.bound,
                                  seed=0, **e.extra)
        except ConvParamError as exc:
            if not str(exc).startswith(f"bound={e.bound!r}"):
                raise
            _RESULTS[key] = exc
    return _RESULTS[key]


def _run(e):
    r = _result(e)
    if isinstance(r, ConvParamError):
        pytest.xfail(f"check() does not accept this algorithm's bound yet: {r}")
    return r


@pytest.mark.parametrize("entry", BROKEN, ids=[e.name for e in BROKEN])
def test_broken_implementation_is_caught(entry):
    report = _run(entry)
    assert not report.ok, f"{entry.name}: not caught\n{report}"
    assert report.failure.repro
    assert report.failure.case.is_valid() or report.failure.case.expect_refusal
    if entry.kind is not None:
        assert report.failure.kind == entry.kind, f"{entry.name}: {report.failure.kind}\n{report}"
    if entry.diagnosis is not None:
        text = " ".join(report.failure.diagnosis).lower()
        assert entry.diagnosis.lower() in text, f"{entry.name}: diagnosis {report.failure.diagnosis}"


@pytest.mark.parametrize("entry", CORRECT, ids=[e.name for e in CORRECT])
def test_correct_variant_passes(entry):
    report = _run(entry)
    assert report.ok, str(report)
    assert report.catalogue_cases > 5 and report.explored_cases > 0


def test_detection_summary(capsys):
    """Detection rate over the broken set and false alarms over the correct set, printed for the record."""
    broken = [r for r in map(_result, BROKEN) if not isinstance(r, ConvParamError)]
    correct = [r for r in map(_result, CORRECT) if not isinstance(r, ConvParamError)]
    pending = len(BROKEN) + len(CORRECT) - len(broken) - len(correct)
    caught = sum(not r.ok for r in broken)
    times = [r.time_to_failure_s for r in broken if r.time_to_failure_s is not None]
    alarms = sum(not r.ok for r in correct)
    with capsys.disabled():
        print(f"\nconformance self-test: caught {caught}/{len(broken)} broken, {alarms}/{len(correct)} false alarms, "
              f"time to first counterexample median {sorted(times)[len(times) // 2]:.3f} s, max {max(times):.3f} s"
              + (f"; {pending} entries wait for check() to accept their algorithm's bound" if pending else ""))
    assert caught == len(broken) and alarms == 0


def test_fft_needs_the_normwise_bound():
    """An FFT convolution is correct but not within the per-element bound: the option exists for it."""
    from broken import conv_fft
    from broken.hidden import refusing

    fft = refusing("conv", conv_fft)
    assert not check(fft, op="conv", dims=2, seed=0).ok
    assert check(fft, op="conv", dims=2, seed=0, bound="normwise").ok
