#!/usr/bin/python3
"""PyTorch reference for tests/nn/test_conv_torch.cpp (Conv2d, ConvTranspose2d, GroupNorm).

Usage: /usr/bin/python3 torch_conv_reference.py CASE_DIR [CASE_DIR ...]

Each CASE_DIR holds spec.txt (one "key value..." per line: op, layer arguments, and "shape.NAME
d0 d1 ..." for every tensor) and the tensors NAME.bin as raw little-endian float32: x (input),
gy (gradient of the output), weight and, when present, bias. The layer runs in float64 on those
values, and y.bin, gx.bin, gweight.bin and gbias.bin are written back as raw float64.
"""
import pathlib
import sys

try:
    import numpy as np
    import torch
except ImportError as e:  # a declared dependency (setup.sh): say so instead of passing
    sys.stderr.write(f"torch_conv_reference.py: cannot import {e.name}; install Debian's python3-torch "
                     f"(setup.sh does) for {sys.executable}\n")
    sys.exit(3)


def read_spec(case):
    spec = {}
    for line in (case / "spec.txt").read_text().splitlines():
        key, *values = line.split()
        spec[key] = values
    return spec


def ints(spec, key):
    return tuple(int(v) for v in spec[key])


def load(case, spec, name):
    shape = ints(spec, "shape." + name)
    data = np.fromfile(case / (name + ".bin"), dtype="<f4")
    return torch.from_numpy(data.astype(np.float64).reshape(shape))


def build(spec):
    op = spec["op"][0]
    bias = spec["bias"][0] == "1"
    if op == "conv2d":
        return torch.nn.Conv2d(int(spec["in"][0]), int(spec["out"][0]), ints(spec, "kernel"), ints(spec, "stride"),
                               ints(spec, "padding"), ints(spec, "dilation"), int(spec["groups"][0]), bias)
    if op == "conv_transpose2d":
        return torch.nn.ConvTranspose2d(int(spec["in"][0]), int(spec["out"][0]), ints(spec, "kernel"),
                                        ints(spec, "stride"), ints(spec, "padding"), ints(spec, "output_padding"),
                                        int(spec["groups"][0]), bias, ints(spec, "dilation"))
    if op == "group_norm":
        return torch.nn.GroupNorm(int(spec["groups"][0]), int(spec["channels"][0]), float(spec["eps"][0]), bias)
    raise SystemExit(f"torch_conv_reference.py: unknown op {op!r}")


def run(case):
    spec = read_spec(case)
    layer = build(spec).double()
    with torch.no_grad():
        if "shape.weight" in spec:
            layer.weight.copy_(load(case, spec, "weight"))
        if "shape.bias" in spec:
            layer.bias.copy_(load(case, spec, "bias"))
    x = load(case, spec, "x").requires_grad_()
    y = layer(x)
    y.backward(load(case, spec, "gy"))
    outputs = {"y": y, "gx": x.grad}
    if layer.weight is not None:
        outputs["gweight"] = layer.weight.grad
    if layer.bias is not None:
        outputs["gbias"] = layer.bias.grad
    for name, t in outputs.items():
        t.detach().numpy().astype("<f8").tofile(case / (name + ".bin"))


def main():
    torch.set_num_threads(1)
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        run(pathlib.Path(arg))


if __name__ == "__main__":
    main()
