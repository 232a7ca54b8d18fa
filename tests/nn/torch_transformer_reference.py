#!/usr/bin/python3
"""PyTorch reference for tests/nn/test_vit_torch.cpp: Linear, LayerNorm, multi-head
self-attention (with causal and key-padding masks), a pre-LN transformer block and a whole
Vision Transformer, written as timm writes them so that the state-dict names must match Tessera's.

Usage: /usr/bin/python3 torch_transformer_reference.py CASE_DIR [CASE_DIR ...]

Each CASE_DIR holds spec.txt, one "key value..." per line:
  model linear|layer_norm|attention|block|vit   and that model's arguments (see build())
  tensor NAME d0 d1 ...                            for every tensor file NAME.bin (raw float32)
Tensors: x (the input), param.<dotted name> (every parameter, loaded with strict names),
mask (optional key-padding mask, non-zero = padding) and grad.<output> (the gradient of each
output). The model runs in float64 on those values; it writes out.<output>.bin, grad_x.bin and
grad_param.<dotted name>.bin back as raw float64.
"""
import math
import pathlib
import sys

try:
    import numpy as np
    import torch
    from torch import nn
except ImportError as e:  # a declared dependency (setup.sh): say so instead of passing
    sys.stderr.write(f"torch_transformer_reference.py: cannot import {e.name}; install Debian's python3-torch "
                     f"(setup.sh does) for {sys.executable}\n")
    sys.exit(3)


class Attention(nn.Module):
    def __init__(self, dim, heads, qkv_bias=True, causal=False):
        super().__init__()
        self.heads, self.causal = heads, causal
        self.qkv = nn.Linear(dim, 3 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x, padding=None):
        B, T, C = x.shape
        qkv = self.qkv(x).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        logits = q @ k.transpose(-2, -1) / math.sqrt(C // self.heads)
        if self.causal:
            future = torch.ones(T, T, dtype=torch.bool).triu(1)
            logits = logits.masked_fill(future, float("-inf"))
        if padding is not None:
            logits = logits.masked_fill(padding[:, None, None, :], float("-inf"))
        y = logits.softmax(-1) @ v
        return self.proj(y.transpose(1, 2).reshape(B, T, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, mlp_ratio, eps=1e-6):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=eps)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, eps=eps)
        self.mlp = Mlp(dim, round(dim * mlp_ratio))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, patch, channels, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvStem(nn.Module):
    """log2(patch) 3x3 stride-2 convolutions, GELU between, 32, 64, ... channels, `dim` out of the last."""

    def __init__(self, patch, channels, dim):
        super().__init__()
        n = patch.bit_length() - 1
        layers, c = [], channels
        for i in range(n):
            if i > 0:
                layers.append(nn.GELU())
            out = dim if i == n - 1 else min(32 << i, dim)
            layers.append(nn.Conv2d(c, out, 3, stride=2, padding=1))
            c = out
        self.proj = nn.Sequential(*layers)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


def sincos_2d(grid, dim):
    """Channels: sin(col w) | cos(col w) | sin(row w) | cos(row w), w_k = 10000^(-k / (dim/4))."""
    omega = 10000.0 ** (-torch.arange(dim // 4, dtype=torch.float64) / (dim // 4))
    rows, cols = torch.meshgrid(torch.arange(grid, dtype=torch.float64), torch.arange(grid, dtype=torch.float64),
                                indexing="ij")
    c, r = cols.reshape(-1, 1) * omega, rows.reshape(-1, 1) * omega
    return torch.cat([c.sin(), c.cos(), r.sin(), r.cos()], dim=1)


class VisionTransformer(nn.Module):
    def __init__(self, image, patch, channels, width, depth, heads, mlp_ratio, pooling, pos_embed, classes,
                 stem="patch"):
        super().__init__()
        self.pooling = pooling
        self.patch_embed = (ConvStem if stem == "conv" else PatchEmbed)(patch, channels, width)
        grid = image // patch
        tokens = grid * grid + (1 if pooling == "cls" else 0)
        if pooling == "cls":
            self.cls_token = nn.Parameter(torch.zeros(1, 1, width))
        if pos_embed == "learned":
            self.pos_embed = nn.Parameter(torch.zeros(1, tokens, width))
        else:
            table = sincos_2d(grid, width)
            if pooling == "cls":
                table = torch.cat([torch.zeros(1, width, dtype=table.dtype), table])
            self.register_buffer("pos_embed", table[None], persistent=False)
        self.blocks = nn.ModuleList([Block(width, heads, mlp_ratio) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes) if classes > 0 else None

    def forward(self, images):
        x = self.patch_embed(images)
        if self.pooling == "cls":
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        if self.pooling == "cls":
            out = {"tokens": x[:, 1:], "pooled": x[:, 0]}
        else:
            out = {"tokens": x, "pooled": x.mean(1)}
        if self.head is not None:
            out["logits"] = self.head(out["pooled"])
        return out


def read_spec(case):
    spec = {}
    for line in (case / "spec.txt").read_text().splitlines():
        key, *values = line.split()
        if key == "tensor":
            spec.setdefault("tensors", {})[values[0]] = tuple(int(v) for v in values[1:])
        else:
            spec[key] = values
    return spec


def load(case, spec, name):
    data = np.fromfile(case / (name + ".bin"), dtype="<f4")
    return torch.from_numpy(data.astype(np.float64).reshape(spec["tensors"][name]))


def build(spec):
    model = spec["model"][0]
    arg = lambda key: spec[key][0]
    if model == "linear":
        return nn.Linear(int(arg("in")), int(arg("out")), bias=arg("bias") == "1")
    if model == "layer_norm":
        return nn.LayerNorm(int(arg("dim")), eps=float(arg("eps")))
    if model == "attention":
        return Attention(int(arg("dim")), int(arg("heads")), arg("qkv_bias") == "1", arg("causal") == "1")
    if model == "block":
        return Block(int(arg("dim")), int(arg("heads")), float(arg("mlp_ratio")))
    if model == "vit":
        return VisionTransformer(int(arg("image")), int(arg("patch")), int(arg("channels")), int(arg("width")),
                                 int(arg("depth")), int(arg("heads")), float(arg("mlp_ratio")), arg("pooling"),
                                 arg("pos_embed"), int(arg("classes")), arg("stem") if "stem" in spec else "patch")
    raise SystemExit(f"torch_transformer_reference.py: unknown model {model!r}")


def run(case):
    spec = read_spec(case)
    module = build(spec).double()
    params = {name[len("param."):]: load(case, spec, name) for name in spec["tensors"] if name.startswith("param.")}
    module.load_state_dict(params, strict=True)  # Tessera's names and shapes must be timm's
    x = load(case, spec, "x").requires_grad_()
    if "mask" in spec["tensors"]:
        out = module(x, load(case, spec, "mask") != 0)
    else:
        out = module(x)
    if not isinstance(out, dict):
        out = {"y": out}
    loss = sum((out[name] * load(case, spec, "grad." + name)).sum() for name in out)
    loss.backward()
    for name, t in out.items():
        t.detach().numpy().astype("<f8").tofile(case / f"out.{name}.bin")
    x.grad.numpy().astype("<f8").tofile(case / "grad_x.bin")
    for name, p in module.named_parameters():
        p.grad.numpy().astype("<f8").tofile(case / f"grad_param.{name}.bin")


def main():
    torch.set_num_threads(1)
    if len(sys.argv) < 2:
        raise SystemExit(__doc__)
    for arg in sys.argv[1:]:
        run(pathlib.Path(arg))


if __name__ == "__main__":
    main()
