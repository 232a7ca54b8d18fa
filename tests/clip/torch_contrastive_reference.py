#!/usr/bin/python3
"""PyTorch reference for Tessera's contrastive losses (tests/clip/test_contrastive_losses.cpp).

usage: torch_contrastive_reference.py DIR...

Each DIR (one case; several per run, since importing torch costs seconds) holds meta.txt ("loss n d p0 p1 max_scale has_labels", loss = infonce | sigmoid), a.f32 and
b.f32 (raw little-endian float32 [n, d]) and, when has_labels, labels.i64 (int64 [n]). p0 is
log_scale (infonce) or log_t (sigmoid); p1 is the bias (sigmoid only). Writes loss.f32, ga.f32,
gb.f32, gp0.f32 and gp1.f32 (raw float32) into DIR. Written the way open_clip and the SigLIP
paper write them, not ported from the C++ code.
"""
import math
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F


def info_nce(a, b, log_scale, max_scale, labels):
    scale = torch.clamp(log_scale.exp(), max=max_scale)
    logits = scale * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t()
    n = a.shape[0]
    if labels is None:
        target = torch.arange(n)
        return (F.cross_entropy(logits, target) + F.cross_entropy(logits.t(), target)) / 2
    same = (labels[:, None] == labels[None, :]).float()
    rows = same / same.sum(1, keepdim=True)
    cols = same / same.sum(0, keepdim=True)
    loss_i = -(rows * F.log_softmax(logits, dim=1)).sum(1).mean()
    loss_t = -(cols * F.log_softmax(logits, dim=0)).sum(0).mean()
    return (loss_i + loss_t) / 2


def sigmoid_loss(a, b, log_t, bias, labels):
    logits = log_t.exp() * F.normalize(a, dim=-1) @ F.normalize(b, dim=-1).t() + bias
    n = a.shape[0]
    if labels is None:
        z = 2 * torch.eye(n) - 1
    else:
        z = 2 * (labels[:, None] == labels[None, :]).float() - 1
    return -F.logsigmoid(z * logits).sum() / n


def main():
    torch.set_num_threads(1)
    for d in sys.argv[1:]:
        run_case(d)


def run_case(d):
    kind, n, dim, p0, p1, max_scale, has_labels = open(os.path.join(d, "meta.txt")).read().split()
    n, dim, has_labels = int(n), int(dim), int(has_labels)

    def load(name):
        x = np.fromfile(os.path.join(d, name), dtype="<f4").reshape(n, dim)
        return torch.tensor(x, requires_grad=True)

    a, b = load("a.f32"), load("b.f32")
    labels = torch.tensor(np.fromfile(os.path.join(d, "labels.i64"), dtype="<i8")) if has_labels else None
    q0 = torch.tensor(float(p0), requires_grad=True)
    q1 = torch.tensor(float(p1), requires_grad=True)
    if kind == "infonce":
        loss = info_nce(a, b, q0, float(max_scale), labels)
    elif kind == "sigmoid":
        loss = sigmoid_loss(a, b, q0, q1, labels)
    else:
        raise SystemExit(f"unknown loss {kind}")
    loss.backward()

    def save(name, t):
        g = t if t is not None else torch.zeros(())
        np.asarray(g.detach().numpy(), dtype="<f4").tofile(os.path.join(d, name))

    save("loss.f32", loss)
    save("ga.f32", a.grad)
    save("gb.f32", b.grad)
    save("gp0.f32", q0.grad)
    save("gp1.f32", q1.grad)


if __name__ == "__main__":
    main()
