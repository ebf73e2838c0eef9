"""Self-test of the conformance suite: every planted bug is caught, no correct variant is flagged.

The implementations live in tests/broken/ (plain numpy, no refconv).  Each
check runs with the default budget and a fixed seed.
"""


import pytest

from refconv.conformance import check
from broken import BROKEN, CORRECT


_RESULTS = {}


def _run(e):
    # one check per entry per session: the summary reuses the parametrized tests' reports
    key = (e.name, id(e.fn))
    if key not in _RESULTS:
        _RESULTS[key] = check(e.fn, op=e.op, dims=e.dims, dtype=e.dtype, precision=e.precision, bound=e.bound, seed=0, **e.extra)
    return _RESULTS[key]


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
    caught, times = 0, []
    for e in BROKEN:
        r = _run(e)
        caught += not r.ok
        if r.time_to_failure_s is not None:
            times.append(r.time_to_failure_s)
    alarms = sum(not _run(e).ok for e in CORRECT)
    with capsys.disabled():
        print(f"\nconformance self-test: caught {caught}/{len(BROKEN)} broken, {alarms}/{len(CORRECT)} false alarms, "
              f"time to first counterexample median {sorted(times)[len(times) // 2]:.3f} s, max {max(times):.3f} s")
    assert caught == len(BROKEN) and alarms == 0


def test_fft_needs_the_normwise_bound():
    """An FFT convolution is correct but not within the per-element bound: the option exists for it."""
    from broken import conv_fft
    from broken.hidden import refusing

    fft = refusing("conv", conv_fft)
    assert not check(fft, op="conv", dims=2, seed=0).ok
    assert check(fft, op="conv", dims=2, seed=0, bound="normwise").ok
