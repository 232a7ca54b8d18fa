#!/usr/bin/python3
"""PyTorch reference for recipes/vit_fmnist.yaml: the same ViT, optimizer, schedule and data,
written plainly in PyTorch, for speed (`tessera bench`) and accuracy comparisons. Run it with
Debian's /usr/bin/python3 (python3-torch) or any Python with torch:

  /usr/bin/python3 bench/vit_torch.py bench --threads 2            # steps/s and peak RSS
  /usr/bin/python3 bench/vit_torch.py train --epochs 1 --threads 2 # test accuracy after training
  ... bench --pooling avg --drop-path 0 --label-smoothing 0.1 [--precision bf16] [--json]   # the recipe's settings

Model (timm's ViT layout): 28x28x1 images, 4x4 patches (49 tokens + CLS), width 192, 6 pre-LN
blocks of 3 heads, MLP 768 (exact GELU), LayerNorm eps 1e-6, learned position embedding, CLS
pooling (--pooling avg: no CLS token, the mean of the final-LayerNorm patch tokens, as the recipe),
linear head; trunc-normal(0.02) init of Linear weights, position and CLS embeddings.
Training: AdamW lr 1e-3, betas (0.9, 0.999), weight decay 0.05 except on 1-D tensors and the
embeddings, linear warm-up (100 steps) then cosine to 1e-5, batch 128, gradient clipping at 1.0,
drop-path rising to 0.1 (--drop-path; the recipe has 0), label smoothing --label-smoothing (the
recipe's 0.1; default 0). --precision bf16 runs forward and loss under bf16 autocast. train prints
one JSON line, bench the median step as `tessera bench` does (one JSON line with --json).
"""
import argparse
import gzip
import json
import math
import os
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_bench

MEAN, STD = 0.2860, 0.3530


def drop_path(x, p, training):
    if not training or p == 0:
        return x
    keep = (torch.rand(x.shape[0], 1, 1) >= p).to(x.dtype) / (1 - p)
    return x * keep


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        a = (q @ k.transpose(-2, -1) / math.sqrt(C // self.heads)).softmax(-1)
        return self.proj((a @ v).transpose(1, 2).reshape(B, T, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    def __init__(self, dim, heads, hidden, drop_path):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=1e-6), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=1e-6), Mlp(dim, hidden)
        self.drop_path = drop_path

    def forward(self, x):
        x = x + drop_path(self.attn(self.norm1(x)), self.drop_path, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path, self.training)


class PatchEmbed(nn.Module):
    def __init__(self, patch, channels, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class VisionTransformer(nn.Module):
    def __init__(self, image=28, patch=4, channels=1, width=192, depth=6, heads=3, mlp=768, classes=10,
                 drop_path_rate=0.1, pooling="cls"):
        super().__init__()
        self.patch_embed = PatchEmbed(patch, channels, width)
        self.cls_token = nn.Parameter(torch.zeros(1, 1, width)) if pooling == "cls" else None
        self.pos_embed = nn.Parameter(torch.zeros(1, (image // patch) ** 2 + int(pooling == "cls"), width))
        rates = [drop_path_rate * i / max(depth - 1, 1) for i in range(depth)]
        self.blocks = nn.ModuleList([Block(width, heads, mlp, r) for r in rates])
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.head = nn.Linear(width, classes)
        nn.init.trunc_normal_(self.pos_embed, std=0.02)
        if self.cls_token is not None:
            nn.init.trunc_normal_(self.cls_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)

    def forward(self, x):
        x = self.patch_embed(x)
        if self.cls_token is not None:
            x = torch.cat([self.cls_token.expand(x.shape[0], -1, -1), x], dim=1)
        x = x + self.pos_embed
        for block in self.blocks:
            x = block(x)
        x = self.norm(x)
        return self.head(x[:, 0] if self.cls_token is not None else x.mean(1))


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load(data_dir, prefix):
    x = torch.tensor(read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")), dtype=torch.float32)
    y = torch.tensor(read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte.gz")).astype(np.int64))
    return ((x / 255 - MEAN) / STD)[:, None], y


def optimizer(model, lr, weight_decay):
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or name in ("pos_embed", "cls_token") else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}], lr=lr)


def lr_at(step, total, base, warmup, min_lr):
    if step < warmup:
        return base * (step + 1) / warmup
    t = (step - warmup) / max(total - warmup, 1)
    return min_lr + (base - min_lr) * 0.5 * (1 + math.cos(math.pi * t))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["bench", "train"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=50, help="bench: timed steps")
    p.add_argument("--warmup", type=int, default=5, help="bench: untimed steps first")
    p.add_argument("--epochs", type=float, default=1, help="train: passes over the training set")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--pooling", choices=["cls", "avg"], default="cls", help="CLS token, or the mean of the patch tokens (the recipe's avg)")
    p.add_argument("--drop-path", type=float, default=0.1, help="drop-path rate of the last block (the recipe's drop_path: 0)")
    p.add_argument("--label-smoothing", type=float, default=0.0, help="the recipe's loss.label_smoothing: 0.1")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    torch_bench.add_options(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = VisionTransformer(drop_path_rate=args.drop_path, pooling=args.pooling)
    opt = optimizer(model, args.lr, 0.05)
    xtr, ytr = load(args.data, "train")
    steps_per_epoch = len(xtr) // args.batch
    total = args.steps + args.warmup if args.mode == "bench" else int(round(args.epochs * steps_per_epoch))
    order, times = torch.randperm(len(xtr)), []
    model.train()
    for step in range(total):
        pos = (step % steps_per_epoch) * args.batch
        if pos == 0 and step > 0:
            order = torch.randperm(len(xtr))
        idx = order[pos: pos + args.batch]
        for g in opt.param_groups:
            g["lr"] = lr_at(step, total, args.lr, 100, 1e-5)
        start = time.perf_counter()
        with torch_bench.autocast(args.precision):
            loss = F.cross_entropy(model(xtr[idx]), ytr[idx], label_smoothing=args.label_smoothing)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        times.append(time.perf_counter() - start)
        if args.mode == "train" and (step + 1) % 50 == 0:
            print(f"step {step + 1}/{total} loss {loss.item():.4f}", flush=True)
    if args.mode == "bench":
        torch_bench.report("vit", args, times[args.warmup:], args.warmup, args.batch, pooling=args.pooling)
        return
    out = {"mode": args.mode, "threads": args.threads, "batch": args.batch, "torch": torch.__version__,
           "precision": args.precision, "peak_rss_mb": torch_bench.peak_rss_mb()}
    xte, yte = load(args.data, "t10k")
    model.eval()
    with torch.no_grad():
        correct = sum((model(xte[i: i + 500]).argmax(1) == yte[i: i + 500]).sum().item()
                      for i in range(0, len(xte), 500))
    out.update(steps=total, test_accuracy=correct / len(xte))
    print(json.dumps(out))


if __name__ == "__main__":
    main()
