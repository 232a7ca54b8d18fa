#!/usr/bin/python3
"""PyTorch reference for Tessera's CLIP / SigLIP recipes on Fashion-MNIST (issue 8).

The same model, data, tokenizer, optimizer and schedule as recipes/clip_fmnist.yaml and
recipes/siglip_fmnist.yaml, written plainly in PyTorch, to define the speed and accuracy Tessera
must beat. Run with Debian's /usr/bin/python3 (python3-torch):

  /usr/bin/python3 bench/clip_torch.py --loss clip --steps 150 --threads 2
  /usr/bin/python3 bench/clip_torch.py --loss siglip --init-bias -10 --init-scale 2.302585
  /usr/bin/python3 bench/clip_torch.py bench --loss clip --pooling avg --init-scale 1.945910 --image-lr-scale 4 \
      --warmup 30 --bench-steps 50 --bench-warmup 5 [--precision bf16] [--json]   # clip_fmnist.yaml's steps/s

Image tower: the ViT of recipes/vit_fmnist.yaml (28x28, patch 4, width 192, depth 6, 3 heads,
MLP 768, CLS pooling, or with --pooling avg no CLS token and the mean of the final-LayerNorm patch
tokens as big_vision's GAP does) without its head, projected to 128. Text tower: byte-level tokens (UTF-8
bytes, PAD 256, BOS 257, EOS 258, context 48), 4 causal pre-LN layers, width 128, 4 heads, MLP 512,
end-of-text pooling, projected to 128. Captions: a class name in a template picked at random per
sample. AdamW (betas 0.9/0.98... see --beta2), linear warm-up then cosine decay to 0. Prints one JSON
line with steps/s, peak RSS and zero-shot test accuracy (prompt ensemble over all templates).
bench: no run to the end and no evaluation; --bench-warmup untimed steps, then --bench-steps steps timed
one by one (from the tokenized batch to the optimizer update; the learning rate follows the schedule of
the --steps run), reported as `tessera bench` does: steps/s of the median step, peak RSS. --precision
bf16 runs the towers and the loss under bf16 autocast, in both modes.
"""
import argparse
import gzip
import json
import math
import os
import resource
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

import torch_bench

CLASSES = ["t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot"]
TEMPLATES = ["a photo of a {}.", "a blurry photo of a {}.", "a black and white photo of a {}.",
             "a low resolution photo of the {}.", "a picture of a {}.", "an image of the {}."]
PAD, BOS, EOS = 256, 257, 258
MEAN, STD = 0.2860, 0.3530


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def tokenize(texts, context=48):
    ids = torch.full((len(texts), context), PAD, dtype=torch.long)
    eos = torch.empty(len(texts), dtype=torch.long)
    for i, t in enumerate(texts):
        b = list(t.encode("utf-8"))[: context - 2]
        row = [BOS] + b + [EOS]
        ids[i, : len(row)] = torch.tensor(row)
        eos[i] = len(row) - 1
    return ids, eos


class Block(nn.Module):
    def __init__(self, dim, heads, mlp, causal):
        super().__init__()
        self.norm1, self.norm2 = nn.LayerNorm(dim, eps=1e-6), nn.LayerNorm(dim, eps=1e-6)
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)
        self.fc1, self.fc2 = nn.Linear(dim, mlp), nn.Linear(mlp, dim)
        self.heads, self.causal = heads, causal

    def attn(self, x):
        b, t, c = x.shape
        q, k, v = self.qkv(x).reshape(b, t, 3, self.heads, c // self.heads).permute(2, 0, 3, 1, 4)
        s = (q @ k.transpose(-2, -1)) / math.sqrt(c // self.heads)
        if self.causal:
            s = s.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf"))
        return self.proj((s.softmax(-1) @ v).transpose(1, 2).reshape(b, t, c))

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(F.gelu(self.fc1(self.norm2(x))))


class DualEncoder(nn.Module):
    def __init__(self, args):
        super().__init__()
        w, tw, e = 192, 128, 128
        self.patch = nn.Conv2d(1, w, 4, 4)
        self.avg_pool = args.pooling == "avg"
        self.cls = None if self.avg_pool else nn.Parameter(torch.zeros(1, 1, w))
        self.pos = nn.Parameter(torch.zeros(1, 49 if self.avg_pool else 50, w))
        self.vblocks = nn.ModuleList([Block(w, 3, 768, False) for _ in range(6)])
        self.vnorm = nn.LayerNorm(w, eps=1e-6)
        for m in self.modules():  # timm's ViT initialisation
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                nn.init.zeros_(m.bias)
        if self.cls is not None:
            nn.init.trunc_normal_(self.cls, std=0.02)
        nn.init.trunc_normal_(self.pos, std=0.02)
        self.vproj = nn.Linear(w, e, bias=False)
        nn.init.normal_(self.vproj.weight, std=w ** -0.5)

        self.tok = nn.Embedding(259, tw)
        self.tpos = nn.Parameter(torch.zeros(48, tw))
        self.tblocks = nn.ModuleList([Block(tw, 4, 512, True) for _ in range(4)])
        self.tnorm = nn.LayerNorm(tw)
        self.tproj = nn.Linear(tw, e, bias=False)
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.tpos, std=0.01)
        attn_std, proj_std, fc_std = tw ** -0.5, tw ** -0.5 * (2 * 4) ** -0.5, (2 * tw) ** -0.5
        for b in self.tblocks:  # CLIP's text initialisation
            nn.init.normal_(b.qkv.weight, std=attn_std)
            nn.init.normal_(b.proj.weight, std=proj_std)
            nn.init.normal_(b.fc1.weight, std=fc_std)
            nn.init.normal_(b.fc2.weight, std=proj_std)
            for lin in (b.qkv, b.proj, b.fc1, b.fc2):
                nn.init.zeros_(lin.bias)
        nn.init.normal_(self.tproj.weight, std=attn_std)

        self.siglip = args.loss == "siglip"
        init_scale = args.init_scale if args.init_scale is not None else (math.log(10) if self.siglip else math.log(1 / 0.07))
        self.logit_scale = nn.Parameter(torch.tensor(float(init_scale)))
        self.logit_bias = nn.Parameter(torch.tensor(float(args.init_bias))) if self.siglip else None

    def encode_image(self, x):
        x = self.patch(x).flatten(2).transpose(1, 2)
        if self.cls is not None:
            x = torch.cat([self.cls.expand(x.shape[0], -1, -1), x], 1)
        x = x + self.pos
        for b in self.vblocks:
            x = b(x)
        x = self.vnorm(x)
        return self.vproj(x.mean(1) if self.avg_pool else x[:, 0])

    def encode_text(self, ids, eos):
        x = self.tok(ids) + self.tpos[: ids.shape[1]]
        for b in self.tblocks:
            x = b(x)
        x = self.tnorm(x)
        return self.tproj(x[torch.arange(x.shape[0]), eos])

    def loss(self, img, txt, labels, multi_positive):
        img, txt = F.normalize(img, dim=-1), F.normalize(txt, dim=-1)
        n = img.shape[0]
        same = (labels[:, None] == labels[None, :]).float() if multi_positive else torch.eye(n)
        if self.siglip:
            logits = self.logit_scale.exp() * img @ txt.t() + self.logit_bias
            return -F.logsigmoid((2 * same - 1) * logits).sum() / n
        logits = self.logit_scale.exp().clamp(max=100) * img @ txt.t()
        rows, cols = same / same.sum(1, keepdim=True), same / same.sum(0, keepdim=True)
        return (-(rows * logits.log_softmax(1)).sum(1).mean() - (cols * logits.log_softmax(0)).sum(0).mean()) / 2


def zero_shot(model, images, labels, batch=500):
    model.eval()
    with torch.no_grad():
        prompts = [t.format(c) for c in CLASSES for t in TEMPLATES]
        ids, eos = tokenize(prompts)
        txt = F.normalize(model.encode_text(ids, eos), dim=-1).reshape(len(CLASSES), len(TEMPLATES), -1)
        cls = F.normalize(txt.mean(1), dim=-1)
        correct = 0
        for i in range(0, len(images), batch):
            img = F.normalize(model.encode_image(images[i: i + batch]), dim=-1)
            correct += (img @ cls.t()).argmax(1).eq(labels[i: i + batch]).sum().item()
    model.train()
    return correct / len(images)


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", nargs="?", choices=["train", "bench"], default="train",
                   help="train (default): the --steps run, then zero-shot accuracy; bench: time steps only")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    p.add_argument("--loss", choices=["clip", "siglip"], default="clip")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=15, help="learning-rate warm-up steps (the recipes': 30)")
    p.add_argument("--image-lr-scale", type=float, default=1.0,
                   help="the image tower's learning rate is --lr times this (the recipes' optim.lr_scales: [visual=4])")
    p.add_argument("--weight-decay", type=float, default=0.1)
    p.add_argument("--beta2", type=float, default=0.98)
    p.add_argument("--init-scale", type=float, default=None, help="log of the logit scale (default: CLIP log(1/0.07), SigLIP log 10)")
    p.add_argument("--init-bias", type=float, default=-10.0)
    p.add_argument("--multi-positive", action="store_true")
    p.add_argument("--pooling", choices=["cls", "avg"], default="cls", help="image tower: CLS token or mean of the patch tokens")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-every", type=int, default=0)
    p.add_argument("--test-limit", type=int, default=10000)
    p.add_argument("--bench-steps", type=int, default=50, help="bench: timed steps")
    p.add_argument("--bench-warmup", type=int, default=5, help="bench: untimed steps first")
    torch_bench.add_options(p)
    args = p.parse_args()
    bench = args.mode == "bench"
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)

    def images(name):
        x = torch.tensor(read_idx(os.path.join(args.data, name)), dtype=torch.float32) / 255
        return ((x - MEAN) / STD).unsqueeze(1)

    xtr, ytr = images("train-images-idx3-ubyte.gz"), torch.tensor(read_idx(os.path.join(args.data, "train-labels-idx1-ubyte.gz")).astype(np.int64))
    if not bench:
        xte, yte = images("t10k-images-idx3-ubyte.gz"), torch.tensor(read_idx(os.path.join(args.data, "t10k-labels-idx1-ubyte.gz")).astype(np.int64))
        xte, yte = xte[: args.test_limit], yte[: args.test_limit]

    model = DualEncoder(args)
    # four groups: weight decay or not (matrices only, not embeddings), image tower or not (its own lr scale)
    groups = {}
    for n, p in model.named_parameters():
        decays = p.ndim >= 2 and n not in ("cls", "pos", "tpos", "tok.weight")
        image = n.split(".")[0] in ("patch", "cls", "pos", "vblocks", "vnorm", "vproj")
        groups.setdefault((decays, image), []).append(p)
    opt = torch.optim.AdamW([{"params": ps, "weight_decay": args.weight_decay if decays else 0,
                              "lr_scale": args.image_lr_scale if image else 1.0} for (decays, image), ps in groups.items()],
                            lr=args.lr, betas=(0.9, args.beta2), eps=1e-6)

    def lr_at(step):  # step counts from 0
        if step < args.warmup:
            return args.lr * (step + 1) / args.warmup
        t = min(1, (step - args.warmup) / max(1, args.steps - args.warmup))  # a bench may run past the end
        return args.lr * 0.5 * (1 + math.cos(math.pi * t))

    order = rng.permutation(len(xtr))
    pos, curve, step_seconds = 0, [], []
    start = time.perf_counter()
    for step in range(args.bench_warmup + args.bench_steps if bench else args.steps):
        if pos + args.batch > len(order):
            order, pos = rng.permutation(len(xtr)), 0
        idx = order[pos: pos + args.batch]
        pos += args.batch
        labels = ytr[idx]
        captions = [TEMPLATES[rng.integers(len(TEMPLATES))].format(CLASSES[l]) for l in labels.tolist()]
        ids, eos = tokenize(captions)
        for g in opt.param_groups:
            g["lr"] = lr_at(step) * g["lr_scale"]
        step_start = time.perf_counter()
        with torch_bench.autocast(args.precision):
            loss = model.loss(model.encode_image(xtr[idx]), model.encode_text(ids, eos), labels, args.multi_positive)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if not model.siglip:
            with torch.no_grad():
                model.logit_scale.clamp_(0, math.log(100))
        step_seconds.append(time.perf_counter() - step_start)
        if not bench and args.eval_every and (step + 1) % args.eval_every == 0:
            curve.append((step + 1, round(zero_shot(model, xte[:2000], yte[:2000]), 4), round(loss.item(), 4)))
    if bench:
        torch_bench.report(args.loss, args, step_seconds[args.bench_warmup:], args.bench_warmup, args.batch,
                           pooling=args.pooling)
        return
    elapsed = time.perf_counter() - start
    acc = zero_shot(model, xte, yte)
    out = {"loss": args.loss, "steps": args.steps, "batch": args.batch, "lr": args.lr, "image_lr_scale": args.image_lr_scale, "warmup": args.warmup, "multi_positive": args.multi_positive,
           "init_scale": model.logit_scale.item() if False else args.init_scale, "init_bias": args.init_bias,
           "final_logit_scale": round(model.logit_scale.item(), 4),
           "final_logit_bias": round(model.logit_bias.item(), 4) if model.siglip else None,
           "final_loss": round(loss.item(), 4), "steps_per_s": round(args.steps / elapsed, 4),
           "train_seconds": round(elapsed, 1), "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
           "zero_shot_test_accuracy": round(acc, 4), "threads": args.threads, "precision": args.precision, "curve": curve}
    print(json.dumps(out))


if __name__ == "__main__":
    main()
