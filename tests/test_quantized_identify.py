"""refconv identify --quantized: each convention is told apart by its crafted probe."""

import json

import pytest

from refconv.conformance.identify_quantized import identify_quantized, table

from broken import quantized as BQ


def test_the_oracle_is_the_definition():
    fp = identify_quantized("refconv.oracle")
    assert fp == {"ties": "half_even", "scale": "exact", "padding": "the zero point", "saturation": "saturates",
                  "accumulator": "exact (int64 or wider)", "per-channel": "per-channel scales"}
    assert identify_quantized("refconv.fast") == fp


@pytest.mark.parametrize("knobs, row, expected", [
    (dict(how="half_away"), "ties", "half_away"),
    (dict(how="half_up"), "ties", "half_up"),
    (dict(how="gemmlowp"), "ties", "gemmlowp"),
    (dict(how="truncate"), "ties", "truncate"),
    (dict(how="float32"), "scale", "float32 scale path"),
    (dict(pad_raw=True), "padding", "raw 0"),
    (dict(saturate=False), "saturation", "wraps (low 8 bits)"),
    (dict(width="int32"), "accumulator", "int32, wraps"),
    (dict(per_tensor=True), "per-channel", "first scale for all"),
])
def test_each_wrong_convention_is_named(knobs, row, expected):
    import numpy as np

    if knobs.get("width"):
        knobs = {**knobs, "width": np.int32}
    fp = identify_quantized(BQ._qlinear(**knobs))
    assert fp[row] == expected, fp
    # a convention of its own elsewhere: the rows after the ties are judged in the rounding found
    assert fp["padding"] == "the zero point" or row == "padding"


def test_the_command_prints_the_table_and_saves_json(tmp_path, capsys):
    from refconv.cli import main

    out = tmp_path / "q.json"
    assert main(["identify", "refconv.oracle", "--quantized", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("quantized") and "half_even" in text
    assert json.loads(out.read_text())["refconv.oracle"]["scale"] == "exact"
    assert table({"t": {"ties": "half_up"}}).splitlines()[1].split() == ["ties", "half_up"]


def test_an_int8_only_2d_kernel_is_probed_in_int8():
    pytest.importorskip("tensorflow")
    pytest.importorskip("flatbuffers")
    fp = identify_quantized("tflite.quantized")
    assert fp["ties"] == "gemmlowp" and fp["padding"] == "the zero point" and fp["accumulator"] == "int32, wraps"
