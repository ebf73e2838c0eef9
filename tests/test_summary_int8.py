"""refconv summary --dtype int8: int8 weights and activations, int32 biases."""

import json

from refconv.cli import main
from refconv.summary import zoo
from refconv.summary.table import summarize


def test_lenet5_int8_memory():
    s = summarize(zoo.get("lenet5"), dtype="int8")
    t = s.totals()
    # biases: 6 + 16 + 120 + 84 + 10 = 236 (int32, 4 bytes); the other 61470 parameters are int8 weights
    assert t["int32_bias_params"] == 236 and t["int8_weight_bytes"] == 61470
    assert t["param_bytes"] == 61470 + 4 * 236
    assert t["forward_bytes_per_image"] == t["forward_activations_per_image"]  # one byte per activation
    f32 = summarize(zoo.get("lenet5"), dtype="float32").totals()
    assert f32["param_bytes"] == 4 * 61706 and "int32_bias_params" not in f32


def test_the_command_reports_int8_weights_and_activations(capsys, tmp_path):
    assert main(["summary", "lenet5", "--dtype", "int8"]) == 0
    out = capsys.readouterr().out
    assert "62,414 B" in out and "61,470 weights in int8, 236 biases in int32" in out
    assert "forward activations per image: 15,626 elements = 15,626 B" in out
    assert main(["summary", "vgg16", "--dtype", "uint8", "--format", "json"]) == 0
    t = json.loads(capsys.readouterr().out)["totals"]
    assert t["param_bytes"] == t["int8_weight_bytes"] + 4 * t["int32_bias_params"]
