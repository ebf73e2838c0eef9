"""Network files (TOML, JSON), the renderers and the ``refconv summary`` command."""

from __future__ import annotations

import argparse
import csv
import io
import json

import dataclasses

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refconv.cli import UsageError
from refconv.params import ConvParamError
from refconv.summary import LAYER_TYPES, Concat, Conv, Sequential, zoo
from refconv.summary import io as netio
from refconv.summary.render import render
from refconv.summary.table import summarize

LENET_TOML = """
name = "lenet_file"
input = [1, 32, 32]

[[layers]]
type = "conv"
out_channels = 6
kernel_size = 5
[[layers]]
type = "tanh"
[[layers]]
type = "avgpool"
kernel_size = 2
[[layers]]
type = "conv"
out_channels = 16
kernel_size = [5, 5]
padding = [[0, 0], 0]
[[layers]]
type = "tanh"
[[layers]]
type = "avgpool"
kernel_size = 2
[[layers]]
type = "conv"
out_channels = 120
kernel_size = 5
[[layers]]
type = "tanh"
[[layers]]
type = "flatten"
[[layers]]
type = "linear"
out_features = 84
[[layers]]
type = "tanh"
[[layers]]
type = "linear"
out_features = 10
"""


def test_toml_lenet(tmp_path):
    p = tmp_path / "lenet.toml"
    p.write_text(LENET_TOML)
    net = netio.load(p)
    assert net.name == "lenet_file" and net.input_shape == (1, 32, 32)
    assert net.num_params() == 61_706  # LeCun et al. 1998, fully connected C3
    assert net.output_shape() == (10,)


def test_nested_containers_from_json():
    text = json.dumps({"layers": [
        {"type": "concat", "name": "inc", "branches": [
            {"type": "conv", "out_channels": 4, "kernel_size": 1},
            [{"type": "conv", "out_channels": 2, "kernel_size": 1}, {"type": "conv", "out_channels": 3, "kernel_size": 3, "padding": "same"}],
        ]},
        {"type": "residual", "body": [{"type": "conv", "out_channels": 7, "kernel_size": 3, "padding": 1}]},
        {"type": "side_output", "head": [{"type": "globalavgpool"}, {"type": "flatten"}, {"type": "linear", "out_features": 2}]},
    ]})
    net = netio.loads(text)
    assert net.output_shape((5, 9, 9)) == (7, 9, 9)
    s = summarize(net, (5, 9, 9))
    assert s.side_outputs == (("2", (2,)),)
    assert net.layers.layers[0] == Concat([Conv(4, 1), Sequential([Conv(2, 1), Conv(3, 3, padding="same")])], name="inc")


@pytest.mark.parametrize(
    "doc,needle",
    [
        ({"layers": [{"type": "relu"}, {"type": "convv"}]}, "layers[1]: unknown type 'convv'"),
        ({"layers": [{"type": "conv", "kernel_size": 3}]}, "layers[0] (conv): missing field 'out_channels'"),
        ({"layers": [{"type": "conv", "out_channels": 4, "kernel_size": "3"}]}, "layers[0] (conv): Conv.kernel_size='3'"),
        ({"layers": [{"type": "conv", "out_channels": 4.0, "kernel_size": 3}]}, "layers[0] (conv): Conv.out_channels=4.0"),
        ({"layers": [{"type": "concat", "branches": [[{"type": "relu"}, {"type": "maxpool", "kernel_size": -1}]]}]},
         "layers[0].branches[0][1] (maxpool): MaxPool.kernel_size=-1"),
        ({"layers": [{"type": "residual"}]}, "layers[0] (residual): missing field 'body'"),
        ({"layers": [{"type": "linear", "out_features": 3, "bias": "yes"}]}, "Linear.bias='yes'"),
        ({"layers": [{"type": "sequential", "layers": {"type": "relu"}}]}, "layers[0].layers="),
        ({"layers": "conv"}, "layers='conv'"),
        ({"layer": []}, "unknown key(s) ['layer']"),
        ({"layers": [], "input": [3, 0, 4]}, "input=[3, 0, 4]"),
        ([1, 2], "expected a table"),
    ],
)
def test_file_errors_name_layer_and_field(doc, needle):
    with pytest.raises(ConvParamError) as e:
        netio.loads(json.dumps(doc))
    assert needle in str(e.value)


def test_syntax_and_file_errors(tmp_path):
    with pytest.raises(ConvParamError, match="invalid TOML"):
        netio.loads("[[layers]\ntype = 'relu'", "toml")
    with pytest.raises(ConvParamError, match="invalid JSON"):
        netio.loads("{'layers': []}")
    with pytest.raises(ConvParamError, match="nested too deeply|invalid JSON"):
        netio.loads('{"layers": [' + '{"type": "residual", "body": ' * 5000 + "1" + "}" * 5000 + "]}")
    with pytest.raises(ConvParamError, match=r"end in \.toml or \.json"):
        netio.load(tmp_path / "net.yaml")
    with pytest.raises(ConvParamError, match="cannot read it"):
        netio.load(tmp_path / "missing.json")


def test_every_zoo_network_round_trips_through_json(tmp_path):
    for name in zoo.names():
        net = zoo.get(name)
        path = tmp_path / f"{name}.json"
        netio.save(net, path)
        back = netio.load(path)
        assert back == net and back.num_params() == net.num_params()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"{n}.json" for n in zoo.names())  # no temp files


# any table of fields, well formed or not: a network, or an error naming the layer -------

_GOOD = st.integers(1, 4)
_VALUE = st.one_of(
    _GOOD, _GOOD, st.booleans(), st.none(), st.integers(-1, 9), st.floats(0, 1),
    st.sampled_from(["same", "valid", "full", "same_lower", "x"]),
    st.lists(st.one_of(_GOOD, st.lists(st.integers(0, 3), min_size=2, max_size=2)), min_size=1, max_size=3),
)
_CONTAINERS = ("sequential", "concat", "residual", "side_output")


def _leaf(kind):
    names = [f.name for f in dataclasses.fields(LAYER_TYPES[kind]) if f.name != "name"]
    return st.fixed_dictionaries({"type": st.just(kind)}, optional={n: _VALUE for n in names})


_LAYER = st.recursive(
    st.sampled_from([k for k in LAYER_TYPES if k not in _CONTAINERS]).flatmap(_leaf),
    lambda c: st.one_of(
        st.fixed_dictionaries({"type": st.just("sequential"), "layers": st.lists(c, max_size=3)}),
        st.fixed_dictionaries({"type": st.just("concat"), "branches": st.lists(st.one_of(c, st.lists(c, max_size=2)), min_size=1, max_size=3)}),
        st.fixed_dictionaries({"type": st.just("residual"), "body": c}, optional={"shortcut": c}),
        st.fixed_dictionaries({"type": st.just("side_output"), "head": c}),
    ),
    max_leaves=6,
)


@settings(max_examples=150)
@given(layers=st.lists(_LAYER, max_size=5), shape=st.sampled_from([(3, 16, 16), (2, 5), (4, 9, 7, 3), (6,)]))
def test_any_file_gives_a_network_or_a_named_error(layers, shape):
    try:
        net = netio.loads(json.dumps({"layers": layers}))
    except ConvParamError as exc:
        assert str(exc).startswith("layers[")  # the position of the offending layer
        return
    assert netio.loads(netio.network_to_json(net)) == net
    try:
        s = summarize(net, shape)
    except ConvParamError as exc:
        assert str(exc).startswith("layer ")  # the path of the offending layer
        return
    for fmt in ("table", "json", "markdown", "csv"):
        assert render(s, fmt)


# ---- renderers -----------------------------------------------------------------------


def test_json_and_csv_carry_the_same_numbers():
    s = summarize(zoo.get("vgg16"), batch=4, dtype="float16")
    d = json.loads(render(s, "json"))
    assert d["totals"]["params"] == 138_357_544 and d["bytes_per_element"] == 2
    assert d["layers"][0]["output_shape"] == [64, 224, 224] and d["layers"][0]["macs"] == 64 * 224 * 224 * 27
    assert d["totals"]["forward_bytes_batch"] == 4 * d["totals"]["forward_bytes_per_image"]
    rows = list(csv.DictReader(io.StringIO(render(s, "csv"))))
    assert [int(r["params"]) for r in rows[:-1]] == [x["params"] for x in d["layers"]]
    assert rows[-1]["path"] == "TOTAL" and int(rows[-1]["params"]) == 138_357_544


def test_text_and_markdown():
    s = summarize(zoo.get("lenet5"))
    text = render(s, "table")
    assert "61,706 trainable" in text and "c1" in text and "6x28x28" in text
    md = render(s, "markdown", bias_macs=False)
    # 1600 outputs x 150 products; 1600 float32 values
    assert "| c3 | conv | 16, 5 | 16x10x10 | 2,416 | 240,000 | 1,600 | 6,400 | 14x14 |" in md
    assert "MACs (no bias)" in md
    import re

    import sympy

    h = sympy.Symbol("H", positive=True, integer=True)
    md = render(summarize(zoo.get("lenet5"), (1, h, h)), "markdown")
    assert "6x(H - 4)x(H - 4)" in md and "\\*" in md
    assert not re.search(r"(?<!\\)\*", md.replace("**warning**", ""))  # every product sign escaped
    with pytest.raises(ConvParamError, match="format='yaml'"):
        render(s, "yaml")


# ---- the command ---------------------------------------------------------------------


def _cli(argv, capsys):
    """Run ``refconv summary`` as the dispatcher does: usage errors become status 2."""
    from refconv.commands import summary

    parser = argparse.ArgumentParser()
    summary.add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        code, message = summary.run(args), ""
    except (UsageError, ConvParamError) as exc:
        code, message = 2, str(exc)
    captured = capsys.readouterr()
    return code, captured.out, message + captured.err


def test_command_zoo_json(capsys):
    code, out, _ = _cli(["resnet50", "--input", "3x224x224", "--format", "json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["totals"]["params"] == 25_557_032 and d["output_shape"] == [1000]


def test_command_file_batch_dtype(tmp_path, capsys):
    p = tmp_path / "my_net.toml"
    p.write_text(LENET_TOML)
    code, out, _ = _cli([str(p), "--input", "1x32x32", "--batch", "64", "--dtype", "float16", "--format", "json"], capsys)
    d = json.loads(out)
    assert code == 0 and d["batch"] == 64 and d["totals"]["params"] == 61_706
    assert d["totals"]["forward_bytes_batch"] == 64 * 2 * d["totals"]["forward_activations_per_image"]


def test_command_symbolic(capsys):
    code, out, _ = _cli(["lenet5", "--input", "1xHxW", "--format", "csv"], capsys)
    first = list(csv.DictReader(io.StringIO(out)))[0]
    assert code == 0 and first["output_shape"] == "6x(H - 4)x(W - 4)"


@pytest.mark.parametrize(
    "argv,needle",
    [
        (["vgg17"], "network='vgg17'"),
        (["lenet5", "--input", "1xx32"], "--input='1xx32'"),
        (["lenet5", "--input", "32"], "--input='32'"),
        (["lenet5", "--input", "1x-3x32"], "--input='1x-3x32'"),
        (["lenet5", "--input", "1x8x8"], "layer 'c3' (conv)"),
        (["lenet5", "--dtype", "float13"], "dtype='float13'"),
        (["lenet5", "--batch", "0"], "batch=0"),
        (["nets/absent.toml"], "file='nets/absent.toml'"),
    ],
)
def test_command_usage_errors(argv, needle, capsys):
    code, _, err = _cli(argv, capsys)
    assert code == 2 and needle in err


def test_command_bad_layer_in_file(tmp_path, capsys):
    p = tmp_path / "bad.json"
    p.write_text(json.dumps({"layers": [{"type": "relu"}, {"type": "maxpool", "kernel_size": 2, "strid": 2}]}))
    code, _, err = _cli([str(p), "--input", "1x8x8"], capsys)
    assert code == 2 and "bad.json: layers[1] (maxpool): unknown field 'strid'" in err


def test_command_strict_and_warnings(capsys):
    code, out, _ = _cli(["alexnet_original", "--input", "3x224x224", "--strict"], capsys)
    assert code == 1 and "warning: conv1: stride 4 leaves the last 1 of 224 input rows unread" in out
    code, _, _ = _cli(["alexnet_original", "--strict"], capsys)  # at its own 227 nothing is left over
    assert code == 0


def test_dispatcher_exit_status():
    cli = pytest.importorskip("refconv.cli")
    try:
        cli.build_parser()
    except ModuleNotFoundError:
        pytest.skip("not every command module exists yet")
    assert cli.main(["summary", "vgg17"]) == 2
    assert cli.main(["summary", "lenet5", "--format", "json"]) == 0


def test_command_bias_and_inplace_flags(capsys):
    code, out, _ = _cli(["lenet5", "--no-bias-macs"], capsys)
    assert code == 0 and "MACs (no bias)" in out and "240,000" in out  # c3: 1600 outputs x 150 products
    _, with_bias, _ = _cli(["lenet5"], capsys)
    assert "MACs (+bias)" in with_bias and "241,600" in with_bias  # plus one bias addition per output
    _, plain, _ = _cli(["vgg16", "--format", "json"], capsys)
    _, inplace, _ = _cli(["vgg16", "--format", "json", "--inplace"], capsys)
    relu = sum(x["activations"] for x in json.loads(plain)["layers"] if x["type"] in ("relu", "dropout"))
    assert (json.loads(plain)["totals"]["forward_activations_per_image"]
            - json.loads(inplace)["totals"]["forward_activations_per_image"]) == relu > 0
