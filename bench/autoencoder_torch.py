#!/usr/bin/python3
"""PyTorch reference for recipes/vae_fmnist.yaml, vqvae_fmnist.yaml, fsq_fmnist.yaml and vae_residual_fmnist.yaml:
the same plain (or residual) conv stack, losses, optimizer and data, written plainly in PyTorch, for speed
(compare with `tessera bench RECIPE`) and quality comparisons. Run it with Debian's /usr/bin/python3 (python3-torch):

  /usr/bin/python3 bench/autoencoder_torch.py bench vae --threads 2           # steps/s
  ... bench vae --beta1 0.97 --beta2 0.99 [--precision bf16] [--json]          # vae_fmnist.yaml's betas
  /usr/bin/python3 bench/autoencoder_torch.py train vqvae --epochs 10 --threads 2   # test PSNR, codebook use

Model: encoder Conv 4x4/2 (1->32), ReLU, Conv 4x4/2 (32->64), ReLU, Conv 3x3 (64->E);
decoder Conv 3x3 (L->64), ReLU, ConvTranspose 4x4/2 (64->32), ReLU, ConvTranspose 4x4/2 (32->1), sigmoid,
on 28x28 Fashion-MNIST pixels in [0, 1] (no normalisation), giving 7x7 token grids.
  vae:   E = 8 (mean, logvar), L = 4; loss = MSE + w * KL, both averaged over their elements, w = --kl-weight (1e-3).
  vqvae: E = L = 64, 512 codes (nn.Embedding, U(-1/512, 1/512)), loss = MSE + |sg(z) - e|^2 + 0.25 |z - sg(e)|^2,
         straight-through estimator. No k-means initialisation, no dead-code restarts (the textbook VQ-VAE).
  fsq:   E = L = 4, levels [8, 5, 5, 5], tanh bound with the half-level offset for even levels, rounding
         with a straight-through estimator; loss = MSE.
  vae_residual: the vae with nn/conv_coder.cpp's residual encoder and decoder (GroupNorm eps 1e-6 + SiLU
         blocks, --channels 32,64,64, --blocks 1, --groups 8): encoder Conv 3x3 (1->32), per level --blocks
         ResidualBlocks (GN, SiLU, Conv 3x3, GN, SiLU, Conv 3x3, plus a 1x1 skip conv when widths differ) and,
         between levels, a Conv 3x3/2; a middle ResidualBlock, GN, SiLU, Conv 3x3 (64->E). The decoder mirrors
         it: Conv 3x3 (L->64), middle block, per level (reversed) blocks, then nearest Upsample x2 + Conv 3x3;
         GN, SiLU, Conv 3x3 (32->1), sigmoid. Module names match Tessera's checkpoints (params/encoder.3.skip...).
Training: Adam lr 1e-3, batch 128 (drop_last), reshuffled every epoch. PSNR = 10 log10(1 / MSE) with
the MSE over every pixel of the 10000 test images. --precision bf16 runs forward and loss under bf16
autocast. train prints one JSON line, bench the median step as `tessera bench` does (and the CPU seconds
per timed step; one JSON line with --json).
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


def encoder(out_channels):
    return nn.Sequential(nn.Conv2d(1, 32, 4, 2, 1), nn.ReLU(), nn.Conv2d(32, 64, 4, 2, 1), nn.ReLU(),
                         nn.Conv2d(64, out_channels, 3, 1, 1))


def decoder(in_channels):
    return nn.Sequential(nn.Conv2d(in_channels, 64, 3, 1, 1), nn.ReLU(), nn.ConvTranspose2d(64, 32, 4, 2, 1), nn.ReLU(),
                         nn.ConvTranspose2d(32, 1, 4, 2, 1), nn.Sigmoid())


def group_norm(channels, groups):
    return nn.GroupNorm(min(groups, channels), channels, eps=1e-6)


class ResidualBlock(nn.Module):
    def __init__(self, in_channels, out_channels, groups):
        super().__init__()
        self.norm1, self.conv1 = group_norm(in_channels, groups), nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.norm2, self.conv2 = group_norm(out_channels, groups), nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        self.skip = nn.Conv2d(in_channels, out_channels, 1) if in_channels != out_channels else None

    def forward(self, x):
        h = self.conv1(F.silu(self.norm1(x)))
        h = self.conv2(F.silu(self.norm2(h)))
        return (self.skip(x) if self.skip is not None else x) + h


class NormAct(nn.Module):
    def __init__(self, channels, groups):
        super().__init__()
        self.norm = group_norm(channels, groups)

    def forward(self, x):
        return F.silu(self.norm(x))


def residual_encoder(out_channels, channels=(32, 64, 64), blocks=1, groups=8):
    layers, width = [nn.Conv2d(1, channels[0], 3, 1, 1)], channels[0]
    for level, c in enumerate(channels):
        for _ in range(blocks):
            layers.append(ResidualBlock(width, c, groups))
            width = c
        if width != c:  # blocks = 0: a 1x1 conv changes the width
            layers.append(nn.Conv2d(width, c, 1))
            width = c
        if level + 1 < len(channels):
            layers.append(nn.Conv2d(width, width, 3, 2, 1))
    return nn.Sequential(*layers, ResidualBlock(width, width, groups), NormAct(width, groups),
                         nn.Conv2d(width, out_channels, 3, 1, 1))


def residual_decoder(in_channels, channels=(32, 64, 64), blocks=1, groups=8):
    width = channels[-1]
    layers = [nn.Conv2d(in_channels, width, 3, 1, 1), ResidualBlock(width, width, groups)]
    for i in reversed(range(len(channels))):
        for _ in range(blocks):
            layers.append(ResidualBlock(width, channels[i], groups))
            width = channels[i]
        if width != channels[i]:
            layers.append(nn.Conv2d(width, channels[i], 1))
            width = channels[i]
        if i > 0:
            layers += [nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(width, width, 3, 1, 1)]
    return nn.Sequential(*layers, NormAct(width, groups), nn.Conv2d(width, 1, 3, 1, 1), nn.Sigmoid())


class VAE(nn.Module):
    def __init__(self, latent=4, kl_weight=1e-3, residual=None):
        super().__init__()
        if residual is None:
            self.encoder, self.decoder = encoder(2 * latent), decoder(latent)
        else:  # residual: dict(channels=..., blocks=..., groups=...)
            self.encoder, self.decoder = residual_encoder(2 * latent, **residual), residual_decoder(latent, **residual)
        self.kl_weight = kl_weight

    def forward(self, x):
        mean, logvar = self.encoder(x).chunk(2, dim=1)
        logvar = logvar.clamp(-30, 20)
        z = mean + torch.exp(0.5 * logvar) * torch.randn_like(mean) if self.training else mean
        kl = 0.5 * (mean.pow(2) + logvar.exp() - 1 - logvar).mean()  # over every latent value, as the MSE
        return self.decoder(z), self.kl_weight * kl, None


class VQVAE(nn.Module):
    def __init__(self, dim=64, codes=512, commitment=0.25):
        super().__init__()
        self.encoder, self.decoder, self.commitment = encoder(dim), decoder(dim), commitment
        self.codebook = nn.Embedding(codes, dim)
        self.codebook.weight.data.uniform_(-1 / codes, 1 / codes)

    def forward(self, x):
        z = self.encoder(x).permute(0, 2, 3, 1)
        flat = z.reshape(-1, z.shape[-1])
        e = self.codebook.weight
        d = flat.pow(2).sum(1, keepdim=True) - 2 * flat @ e.t() + e.pow(2).sum(1)
        idx = d.argmin(1)
        q = self.codebook(idx).view_as(z)
        loss = F.mse_loss(q, z.detach()) + self.commitment * F.mse_loss(z, q.detach())
        q = z + (q - z).detach()
        return self.decoder(q.permute(0, 3, 1, 2)), loss, idx


class FSQ(nn.Module):
    def __init__(self, levels=(8, 5, 5, 5)):
        super().__init__()
        self.encoder, self.decoder = encoder(len(levels)), decoder(len(levels))
        L = torch.tensor(levels, dtype=torch.float32)
        self.register_buffer("half_range", (L - 1) * (1 - 1e-3) / 2)
        self.register_buffer("offset", torch.where(L % 2 == 0, 0.5, 0.0))
        self.register_buffer("shift", torch.atanh(self.offset / self.half_range))
        self.register_buffer("half_width", torch.floor(L / 2))
        self.register_buffer("basis", torch.cumprod(torch.cat([torch.ones(1), L[:-1]]), 0))

    def forward(self, x):
        z = self.encoder(x).permute(0, 2, 3, 1)
        b = torch.tanh(z + self.shift) * self.half_range - self.offset
        q = b + (torch.round(b) - b).detach()
        idx = ((torch.round(b) + self.half_width) * self.basis).sum(-1).long().reshape(-1)
        return self.decoder((q / self.half_width).permute(0, 3, 1, 2)), torch.zeros(()), idx


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def load(data_dir, prefix):
    return torch.from_numpy(read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte.gz")).copy()).float().div(255).unsqueeze(1)


def evaluate(model, images, codes):
    model.eval()
    se, counts = 0.0, torch.zeros(codes, dtype=torch.long) if codes else None
    with torch.no_grad():
        for i in range(0, len(images), 256):
            x = images[i:i + 256]
            recon, _, idx = model(x)
            se += (recon.double() - x.double()).pow(2).sum().item()
            if codes:
                counts += torch.bincount(idx, minlength=codes)
    model.train()
    out = {"test_psnr": 10 * math.log10(1 / (se / images.numel()))}
    if codes:
        p = counts.double() / counts.sum()
        nz = p[p > 0]
        out.update(codes_used=int((counts > 0).sum()), codebook_size=codes,
                   perplexity=math.exp(-(nz * nz.log()).sum().item()))
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["bench", "train"])
    p.add_argument("model", choices=["vae", "vae_residual", "vqvae", "fsq"])
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--steps", type=int, default=200, help="bench: timed steps")
    p.add_argument("--warmup", type=int, default=20, help="bench: untimed steps first")
    p.add_argument("--epochs", type=float, default=10, help="train: passes over the training set")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--beta1", type=float, default=0.9, help="Adam's first-moment decay (the recipes' optim.betas[0])")
    p.add_argument("--beta2", type=float, default=0.999, help="Adam's second-moment decay (the recipes' optim.betas[1])")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--kl-weight", type=float, default=1e-3,
                   help="vae, vae_residual: weight of the KL mean (2.5e-4 = 1e-3 on per-image sums)")
    p.add_argument("--latent", type=int, default=4, help="vae, vae_residual: latent channels")
    p.add_argument("--channels", default="32,64,64", help="vae_residual: width per level (L levels downsample 2^(L-1))")
    p.add_argument("--blocks", type=int, default=1, help="vae_residual: residual blocks per level")
    p.add_argument("--groups", type=int, default=8, help="vae_residual: GroupNorm groups (capped by each width)")
    p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
    torch_bench.add_options(p)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    if args.model in ("vae", "vae_residual"):
        residual = dict(channels=[int(c) for c in args.channels.split(",")], blocks=args.blocks, groups=args.groups)
        model = VAE(args.latent, args.kl_weight, residual if args.model == "vae_residual" else None)
    else:
        model = {"vqvae": VQVAE, "fsq": FSQ}[args.model]()
    codes = {"vae": 0, "vae_residual": 0, "vqvae": 512, "fsq": 1000}[args.model]
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr, betas=(args.beta1, args.beta2))
    train = load(args.data, "train")
    steps_per_epoch = len(train) // args.batch
    total = args.steps + args.warmup if args.mode == "bench" else int(round(args.epochs * steps_per_epoch))
    order, step_seconds = None, []
    for step in range(total):
        if step % steps_per_epoch == 0:
            order = torch.randperm(len(train))
        if step == args.warmup and args.mode == "bench":
            cpu_start = time.process_time()
        at = (step % steps_per_epoch) * args.batch
        x = train[order[at:at + args.batch]]
        start = time.perf_counter()
        with torch_bench.autocast(args.precision):
            recon, extra, _ = model(x)
            loss = F.mse_loss(recon, x) + extra
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step_seconds.append(time.perf_counter() - start)
    if args.mode == "bench":
        # CPU seconds (all threads) per timed step: what a step costs, whatever else runs on the machine
        torch_bench.report(args.model, args, step_seconds[args.warmup:], args.warmup, args.batch,
                           cpu_s_per_step=(time.process_time() - cpu_start) / args.steps,
                           betas=[args.beta1, args.beta2], final_loss=loss.item())
        return
    result = {"model": args.model, "mode": args.mode, "threads": args.threads, "batch": args.batch, "steps": total,
              "betas": [args.beta1, args.beta2], "precision": args.precision, "final_loss": loss.item()}
    result.update(evaluate(model, load(args.data, "t10k"), codes))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
