#!/usr/bin/env python3
"""PyTorch reference for Tessera's `latent_dit` model and `diffusion` task (issue 19: a latent
diffusion transformer on the 7x7x4 latents of a frozen VAE on Fashion-MNIST).

The model, diffusion maths and evaluation protocol of nn/dit.h, nn/diffusion.h,
nn/latent_diffusion.h, train/tasks/diffusion.cpp and recipes/dit_fmnist.yaml, written plainly in PyTorch: it defines the numbers and the
speed that Tessera's `latent_dit` must match. Run with Debian's /usr/bin/python3 (torch 1.13, h5py,
PIL) or a venv with torch 2.x from PyPI and h5py (without PIL there is no --grid):

  dit_torch.py check DUMP.h5 [--tol 1e-4]        # Tessera's forward/backward dump against torch
  dit_torch.py pack DIR DUMP.h5                  # raw tensors + DIR/manifest.txt -> DUMP.h5 (for
                                                 # tests/nn, whose executable does not link HDF5)
  dit_torch.py train --vae runs/vae_fmnist/last.h5 --classifier runs/vit_fmnist/last.h5 \
      --data datasets/fmnist --steps 3000 --threads 2 [--batch 128 --lr 5e-4 --min-lr 1e-5 --warmup 200 \
      --ema 0.995 --width 192 --depth 6 --heads 3 --schedule linear|cosine --prediction eps|v \
      --class-dropout 0.1 --guidance 2 --sample-steps 50 --sampler ddim|ddpm --eval-samples 1000 --bf16 \
      --seed 0 --save OUT.h5 --grid OUT.png]     # trains, then evaluates the EMA weights
  dit_torch.py bench --steps 20 --threads 2 [--bf16] [--json]   # training steps/s (median step)
  dit_torch.py into TESSERA.h5 SAVED.h5 OUT.h5   # a copy of a Tessera latent_dit checkpoint whose
                                                 # weights (params/ and ema/) are train --save's

Model (DiT, Peebles & Xie 2023; facebookresearch/DiT's parameter names, so a Tessera checkpoint or
dump loads by name): x [N, 4, 7, 7] -> Conv p x p / p (`x_embedder.proj`) -> tokens + `pos_embed`
(fixed 2-D sin-cos buffer, MAE's table, or learned); c = t_embedder(t) + y_embedder(y) with t the
step index as a real (256 sinusoidal features, cos first, then Linear, SiLU, Linear) and
y in 0..num_classes (num_classes = "no class", for classifier-free guidance); `depth` blocks of
adaLN-Zero: LayerNorm without affine (eps 1e-6) modulated by shift/scale and gated, attention with
fused qkv, MLP with exact (erf) GELU (the original DiT uses the tanh approximation; the spec says
erf); final layer: modulated LayerNorm, Linear to p*p*4, unpatchify. Init: xavier-uniform Linear
weights, zero biases, normal(0.02) timestep MLP and label table, zero adaLN and final linear.

Diffusion: T = 1000, betas linear (1e-4..0.02) or cosine (Nichol & Dhariwal), in float64; epsilon
or v prediction, MSE over every element; labels dropped to "no class" with --class-dropout.
Training (`train`, `bench`): the frozen VAE's posterior mean (encoder channels 0..3) times
latent_scale = 1 / std of those values over the first 4096 training images; AdamW, linear warm-up
then half-cosine to --min-lr reached at the last step (train/schedule.cpp), gradient clipping, an
EMA of the weights updated after every step (train/ema.cpp: average = d * average + (1 - d) * w,
starting from the initial weights). --bf16 runs the DiT's forward and the loss under
torch.autocast("cpu", bfloat16); the frozen VAE encodes in fp32, and sampling runs in fp32 (Tessera's
train.precision bf16 sets the precision of every matmul, the VAE's and sampling's included).

The defaults are recipes/dit_fmnist.yaml's values (3000 steps, AdamW 5e-4 with 200 warm-up steps
and cosine to 1e-5, weight decay 0, clipping 1.0, EMA 0.995, guidance 2, 50 DDIM steps, 1000 samples).

Evaluation (the EMA weights): --eval-samples n images, sample i of class floor(10 i / n) (n/10 per
class, as Tessera's diffusion task), sampled from x_T ~ N(0, 1)
with --sample-steps strided steps (t_i = round((T-1)(S-1-i)/(S-1)), halves up), DDIM (eta 0) or
ancestral DDPM, classifier-free guidance o = o_null + g (o_class - o_null), no clipping; divided by
latent_scale and decoded by the VAE. Features = the Tessera ViT classifier's pooled vector (mean of
the final-LayerNorm patch tokens; images normalised with 0.2860 / 0.3530). fd_vit = Frechet
distance (means, covariances with N-1, float64, tr sqrt via eigendecompositions) between the
samples and the first n test images; fd_vit_floor the same between the first n training and the
first n test images; sample_accuracy = the classifier's argmax equals the class asked for;
precision / recall = Kynkaenniemi et al. 2019 with k = 3. `train` and `bench` print one JSON line
on stdout; progress goes to stderr.

The dump `check` reads: params/<name> (every DiT parameter, and pos_embed whether learned or a
fixed buffer), the configuration (input_size, in_channels, patch_size, width, depth, heads,
mlp_ratio, num_classes, learned_pos_embed, frequency_dim) as attributes of a group `config`, as
attributes of the file, or as a JSON string attribute `config`; inputs x f32 [N, C, H, W], t f32
[N], y i64 [N], target f32 [N, C, H, W]; Tessera's output [N, C, H, W], loss (scalar
mean((output - target)^2)), grads/<name> of every parameter and grads/x. The reference computes in
float64 from the same float32 values, so each error is Tessera's own: max |ours - ref| /
max(max |ref|, 1e-6) per tensor, and the fixed pos_embed table is compared with the reference's.
"""
import argparse
import contextlib
import copy
import json
import math
import os
import re
import resource
import shutil
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# Defaults: recipes/dit_fmnist.yaml's values (the recipe is the truth; see its comments).

RECIPE = dict(width=192, depth=6, heads=3, patch_size=1, mlp_ratio=4.0, frequency_dim=256, num_classes=10,
              learned_pos_embed=False, batch=128, lr=5e-4, min_lr=1e-5, warmup=200, weight_decay=0.0,
              betas=(0.9, 0.999), adam_eps=1e-8, clip=1.0, ema=0.995, schedule="linear", prediction="eps",
              class_dropout=0.1, timesteps=1000, guidance=2.0, sample_steps=50, sampler="ddim", sample_seed=0,
              eval_samples=1000, steps=3000, seed=0)
VIT_MEAN, VIT_STD = 0.2860, 0.3530
LATENT_IMAGES = 4096  # latent_scale is measured on the first this many training images
NORM_EPS = 1e-6

# ------------------------------------------------------------------------------------------------
# Model: parameter names exactly as Tessera's `params/<name>` (facebookresearch/DiT's).


def attention(q, k, v):
    """softmax(q k^T / sqrt(d)) v: PyTorch 2's fused kernel, or the same written out for Debian's
    torch 1.13 (which the test suite's agreement check runs under)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v)
    return (q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).softmax(-1) @ v


class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x):
        B, T, C = x.shape
        q, k, v = self.qkv(x).reshape(B, T, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(attention(q, k, v).transpose(1, 2).reshape(B, T, C))


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))  # exact (erf) GELU


class PatchEmbed(nn.Module):
    def __init__(self, channels, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)  # [N, T, D], row-major over the grid


def timestep_features(t, dim):
    """[N] -> [N, dim]: [cos(t f_i), sin(t f_i)], f_i = exp(-ln(10000) i / (dim/2)), i < dim/2."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float64) / half).to(t.dtype)
    args = t[:, None] * freqs[None]
    emb = torch.cat([torch.cos(args), torch.sin(args)], dim=-1)
    if dim % 2:
        emb = torch.cat([emb, torch.zeros_like(emb[:, :1])], dim=-1)
    return emb


class TimestepEmbedder(nn.Module):
    def __init__(self, dim, frequency_dim):
        super().__init__()
        self.frequency_dim = frequency_dim
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, dim), nn.SiLU(), nn.Linear(dim, dim))

    def forward(self, t):
        return self.mlp(timestep_features(t, self.frequency_dim).to(self.mlp[0].weight.dtype))


class LabelEmbedder(nn.Module):
    def __init__(self, num_classes, dim):
        super().__init__()
        self.embedding_table = nn.Embedding(num_classes + 1, dim)  # row num_classes: "no class"

    def forward(self, y):
        return self.embedding_table(y)


def modulate(x, shift, scale):
    return x * (1 + scale[:, None, :]) + shift[:, None, :]


class DiTBlock(nn.Module):
    def __init__(self, dim, heads, mlp_ratio):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.attn = Attention(dim, heads)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 6 * dim))

    def forward(self, x, c):
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = self.adaLN_modulation(c).chunk(6, dim=1)
        x = x + gate_msa[:, None] * self.attn(modulate(self.norm1(x), shift_msa, scale_msa))
        return x + gate_mlp[:, None] * self.mlp(modulate(self.norm2(x), shift_mlp, scale_mlp))


class FinalLayer(nn.Module):
    def __init__(self, dim, out_features):
        super().__init__()
        self.norm_final = nn.LayerNorm(dim, elementwise_affine=False, eps=NORM_EPS)
        self.linear = nn.Linear(dim, out_features)
        self.adaLN_modulation = nn.Sequential(nn.SiLU(), nn.Linear(dim, 2 * dim))

    def forward(self, x, c):
        shift, scale = self.adaLN_modulation(c).chunk(2, dim=1)
        return self.linear(modulate(self.norm_final(x), shift, scale))


def sincos_pos_embed(dim, grid):
    """MAE/DiT get_2d_sincos_pos_embed -> [grid*grid, dim] float64: the first half of dim encodes the
    column index, the second half the row index, each half [sin(pos w_i), cos(pos w_i)],
    w_i = 1 / 10000^(i / (dim/4)), i < dim/4; tokens row-major."""
    if dim % 4:
        raise SystemExit(f"a fixed sin-cos position table needs a width divisible by 4 (got {dim})")
    omega = 1.0 / 10000 ** (np.arange(dim // 4, dtype=np.float64) / (dim / 4.0))

    def one_d(pos):
        out = np.einsum("m,d->md", pos.reshape(-1).astype(np.float64), omega)
        return np.concatenate([np.sin(out), np.cos(out)], axis=1)

    rows, cols = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
    return np.concatenate([one_d(cols), one_d(rows)], axis=1)


class DiT(nn.Module):
    def __init__(self, input_size=7, in_channels=4, patch_size=1, width=256, depth=6, heads=4, mlp_ratio=4.0,
                 num_classes=10, learned_pos_embed=False, frequency_dim=256):
        super().__init__()
        if input_size % patch_size or width % heads:
            raise SystemExit(f"DiT: patch_size {patch_size} must divide input_size {input_size}, "
                             f"heads {heads} must divide width {width}")
        self.config = dict(input_size=input_size, in_channels=in_channels, patch_size=patch_size, width=width,
                           depth=depth, heads=heads, mlp_ratio=mlp_ratio, num_classes=num_classes,
                           learned_pos_embed=learned_pos_embed, frequency_dim=frequency_dim)
        self.in_channels, self.patch_size, self.num_classes = in_channels, patch_size, num_classes
        self.grid = input_size // patch_size
        self.x_embedder = PatchEmbed(in_channels, patch_size, width)
        tokens = self.grid * self.grid
        if learned_pos_embed:
            self.pos_embed = nn.Parameter(torch.zeros(1, tokens, width))
        else:
            self.register_buffer("pos_embed", torch.from_numpy(sincos_pos_embed(width, self.grid)).float()[None])
        self.t_embedder = TimestepEmbedder(width, frequency_dim)
        self.y_embedder = LabelEmbedder(num_classes, width)
        self.blocks = nn.ModuleList([DiTBlock(width, heads, mlp_ratio) for _ in range(depth)])
        self.final_layer = FinalLayer(width, patch_size * patch_size * in_channels)
        self.initialize()

    def initialize(self):
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                nn.init.zeros_(m.bias)
        w = self.x_embedder.proj.weight
        nn.init.xavier_uniform_(w.data.view(w.shape[0], -1))
        nn.init.zeros_(self.x_embedder.proj.bias)
        if isinstance(self.pos_embed, nn.Parameter):
            nn.init.normal_(self.pos_embed, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[0].weight, std=0.02)
        nn.init.normal_(self.t_embedder.mlp[2].weight, std=0.02)
        nn.init.normal_(self.y_embedder.embedding_table.weight, std=0.02)
        for block in self.blocks:
            nn.init.zeros_(block.adaLN_modulation[1].weight)
            nn.init.zeros_(block.adaLN_modulation[1].bias)
        for p in (self.final_layer.adaLN_modulation[1].weight, self.final_layer.adaLN_modulation[1].bias,
                  self.final_layer.linear.weight, self.final_layer.linear.bias):
            nn.init.zeros_(p)

    def unpatchify(self, x):
        N, p, c, h = x.shape[0], self.patch_size, self.in_channels, self.grid
        x = x.reshape(N, h, h, p, p, c).permute(0, 5, 1, 3, 2, 4)  # (N, C, h, p, w, p)
        return x.reshape(N, c, h * p, h * p)

    def forward(self, x, t, y):
        x = self.x_embedder(x) + self.pos_embed
        c = self.t_embedder(t) + self.y_embedder(y)
        for block in self.blocks:
            x = block(x, c)
        return self.unpatchify(self.final_layer(x, c))


# ------------------------------------------------------------------------------------------------
# Diffusion (nn/diffusion.h).

class Diffusion:
    def __init__(self, schedule="linear", timesteps=1000, prediction="eps"):
        T = timesteps
        if schedule == "linear":
            betas = np.linspace(1e-4, 0.02, T, dtype=np.float64)
        elif schedule == "cosine":
            f = lambda s: math.cos(((s / T) + 0.008) / 1.008 * math.pi / 2) ** 2
            betas = np.array([min(1 - f(i + 1) / f(i), 0.999) for i in range(T)], dtype=np.float64)
        else:
            raise SystemExit(f"schedule: {schedule} is neither linear nor cosine")
        if prediction not in ("eps", "v"):
            raise SystemExit(f"prediction: {prediction} is neither eps nor v")
        self.T, self.prediction = T, prediction
        self.alphas_cumprod = np.cumprod(1 - betas)

    def training_inputs(self, x0, gen):
        """t ~ U{0..T-1}, eps ~ N(0, 1) -> (x_t, t as reals, the target of the objective)."""
        N = x0.shape[0]
        t = torch.randint(0, self.T, (N,), generator=gen)
        eps = torch.randn(x0.shape, generator=gen)
        ab = torch.from_numpy(self.alphas_cumprod[t.numpy()]).to(x0.dtype).view(N, 1, 1, 1)
        a, s = ab.sqrt(), (1 - ab).sqrt()
        x_t = a * x0 + s * eps
        target = eps if self.prediction == "eps" else a * eps - s * x0
        return x_t, t.to(x0.dtype), target

    def x0_eps(self, o, x_t, ab):
        a, s = math.sqrt(ab), math.sqrt(1 - ab)
        if self.prediction == "eps":
            return (x_t - s * o) / a, o
        return a * x_t - s * o, s * x_t + a * o

    def sampling_steps(self, S):
        """t_i = round((T - 1)(S - 1 - i) / (S - 1)), i = 0..S-1, halves rounded up (C++ std::round);
        one step: T - 1 alone."""
        if not 1 <= S <= self.T:
            raise SystemExit(f"--sample-steps {S}: must be in [1, {self.T}]")
        if S == 1:
            return [self.T - 1]
        return [(2 * (self.T - 1) * (S - 1 - i) + (S - 1)) // (2 * (S - 1)) for i in range(S)]

    @torch.no_grad()
    def sample(self, model, y, steps, sampler, guidance, gen, shape):
        """Class-conditional samples for labels y [N] -> latents [N, C, H, W] (scaled latent space)."""
        N, null = y.shape[0], model.num_classes
        x = torch.randn((N,) + tuple(shape), generator=gen)
        ts = self.sampling_steps(steps)
        for i, t in enumerate(ts):
            ab = float(self.alphas_cumprod[t])
            ab_prev = float(self.alphas_cumprod[ts[i + 1]]) if i + 1 < len(ts) else 1.0
            tt = torch.full((N,), float(t))
            if guidance == 1:
                o = model(x, tt, y)
            else:
                both = model(torch.cat([x, x]), torch.cat([tt, tt]), torch.cat([y, torch.full_like(y, null)]))
                o_class, o_null = both[:N], both[N:]
                o = o_null + guidance * (o_class - o_null)
            x0, eps = self.x0_eps(o, x, ab)
            if sampler == "ddim":
                x = math.sqrt(ab_prev) * x0 + math.sqrt(1 - ab_prev) * eps
            else:
                beta = 1 - ab / ab_prev
                mean = (math.sqrt(ab_prev) * beta / (1 - ab)) * x0 + \
                       (math.sqrt(1 - beta) * (1 - ab_prev) / (1 - ab)) * x
                x = mean
                if i + 1 < len(ts):
                    x = mean + math.sqrt(beta * (1 - ab_prev) / (1 - ab)) * torch.randn(x.shape, generator=gen)
        return x


# ------------------------------------------------------------------------------------------------
# Tessera checkpoints: the frozen VAE and the ViT classifier.

def read_checkpoint(path):
    """params/<name> with ema/<name> in their place when the run kept an EMA and its recipe
    evaluates with it (train/trained_model.cpp), and the recipe text."""
    if not os.path.exists(path):
        raise SystemExit(f"{path}: no such checkpoint")
    with h5py.File(path, "r") as f:
        if "params" not in f:
            raise SystemExit(f"{path}: no params/ group (not a Tessera checkpoint)")
        params = {n: np.asarray(f["params"][n][()]) for n in f["params"]}
        recipe = f["meta"].attrs.get("recipe", "") if "meta" in f else ""
        recipe = recipe.decode() if isinstance(recipe, bytes) else str(recipe)
        if "ema" in f and len(f["ema"]) and not re.search(r"^\s*use_ema:\s*false", recipe, re.M):
            params.update({n: np.asarray(f["ema"][n][()]) for n in f["ema"]})
    return params, recipe


def load_into(model, params, path, strict_extra=True):
    own = dict(model.named_parameters())
    for n, p in own.items():
        if n not in params:
            raise SystemExit(f"{path}: parameter {n} is missing")
        if tuple(params[n].shape) != tuple(p.shape):
            raise SystemExit(f"{path}: {n} has shape {tuple(params[n].shape)}, the model {tuple(p.shape)}")
        with torch.no_grad():
            p.copy_(torch.from_numpy(np.asarray(params[n], dtype=np.float32)))
    extra = [n for n in params if n not in own]
    if strict_extra and extra:
        raise SystemExit(f"{path}: parameters the model does not have: {extra[:5]}")


def load_vae(path):
    from autoencoder_torch import VAE
    params, _ = read_checkpoint(path)
    if "encoder.4.weight" not in params or "encoder.1.norm1.weight" in params:
        raise SystemExit(f"{path}: not a plain-encoder VAE checkpoint (recipes/vae_fmnist.yaml)")
    latent = params["decoder.0.weight"].shape[1]
    if params["encoder.4.weight"].shape[0] != 2 * latent:
        raise SystemExit(f"{path}: encoder.4 has {params['encoder.4.weight'].shape[0]} channels, "
                         f"a VAE with {latent} latent channels has {2 * latent}")
    vae = VAE(latent=latent)
    load_into(vae, params, path)
    vae.eval().requires_grad_(False)
    return vae


def encode(vae, images):
    """uint8 [N, 28, 28, 1] -> the posterior mean [N, L, 7, 7] (fp32)."""
    x = images.permute(0, 3, 1, 2).float().div_(255)
    with torch.no_grad():
        return vae.encoder(x)[:, : vae.decoder[0].weight.shape[1]]


def measure_latent_scale(vae, images):
    z = torch.cat([encode(vae, images[i: i + 512]) for i in range(0, min(LATENT_IMAGES, len(images)), 512)])
    return 1.0 / float(z.double().std(unbiased=False))


def load_classifier(path):
    from vit_torch import VisionTransformer
    params, recipe = read_checkpoint(path)
    if "patch_embed.proj.weight" not in params:
        raise SystemExit(f"{path}: not a ViT checkpoint (no params/patch_embed.proj.weight)")
    pw = params["patch_embed.proj.weight"]
    width, channels, patch = pw.shape[0], pw.shape[1], pw.shape[2]
    depth = len({n.split(".")[1] for n in params if n.startswith("blocks.")})
    model_section = recipe.split("\nmodel:", 1)[1] if "\nmodel:" in recipe else recipe
    heads = re.search(r"^\s+heads:\s*(\d+)", model_section, re.M)
    heads = int(heads.group(1)) if heads else 3
    pooling = "cls" if "cls_token" in params else "avg"
    tokens = params["pos_embed"].shape[1] - (pooling == "cls")
    image = int(round(math.sqrt(tokens))) * patch
    vit = VisionTransformer(image=image, patch=patch, channels=channels, width=width, depth=depth, heads=heads,
                            mlp=params["blocks.0.mlp.fc1.weight"].shape[0], classes=params["head.weight"].shape[0],
                            drop_path_rate=0.0, pooling=pooling)
    load_into(vit, params, path)
    vit.eval().requires_grad_(False)
    return vit


@torch.no_grad()
def classifier_outputs(vit, images, batch=500):
    """images in [0, 1], [N, 1, 28, 28] -> (pooled features [N, D] float64, predicted class [N])."""
    feats, preds = [], []
    for i in range(0, len(images), batch):
        x = (images[i: i + batch].float() - VIT_MEAN) / VIT_STD
        h = vit.patch_embed(x)
        if vit.cls_token is not None:
            h = torch.cat([vit.cls_token.expand(h.shape[0], -1, -1), h], dim=1)
        h = h + vit.pos_embed
        for block in vit.blocks:
            h = block(h)
        h = vit.norm(h)
        pooled = h[:, 0] if vit.cls_token is not None else h.mean(1)
        feats.append(pooled.double())
        preds.append(vit.head(pooled).argmax(1))
    return torch.cat(feats), torch.cat(preds)


# ------------------------------------------------------------------------------------------------
# Metrics.

def sqrtm_psd(s):
    w, v = torch.linalg.eigh(s)
    return (v * w.clamp(min=0).sqrt()) @ v.T


def frechet_distance(a, b):
    """Frechet distance between Gaussians fitted to feature rows a and b (float64, covariances with
    N - 1): |mu1 - mu2|^2 + tr S1 + tr S2 - 2 sum sqrt(eig(sqrt(S1) S2 sqrt(S1)))."""
    a, b = a.double(), b.double()
    mu1, mu2 = a.mean(0), b.mean(0)
    s1 = (a - mu1).T @ (a - mu1) / (len(a) - 1)
    s2 = (b - mu2).T @ (b - mu2) / (len(b) - 1)
    r1 = sqrtm_psd(s1)
    m = r1 @ s2 @ r1
    eig = torch.linalg.eigvalsh((m + m.T) / 2).clamp(min=0)
    return max(0.0, float((mu1 - mu2).pow(2).sum() + s1.trace() + s2.trace() - 2 * eig.sqrt().sum()))


def knn_radii(x, k, chunk=1000):
    """Distance of each row of x to its k-th nearest other row of x."""
    out = []
    for i in range(0, len(x), chunk):
        d = torch.cdist(x[i: i + chunk], x, compute_mode="donot_use_mm_for_euclid_dist")
        rows = torch.arange(d.shape[0])
        d[rows, rows + i] = float("inf")  # a row is not its own neighbour
        out.append(d.kthvalue(k, dim=1).values)
    return torch.cat(out)


def inside_manifold(queries, points, radii, chunk=1000):
    """Fraction of queries within radii[j] of some points[j]."""
    hits = 0
    for i in range(0, len(queries), chunk):
        d = torch.cdist(queries[i: i + chunk], points, compute_mode="donot_use_mm_for_euclid_dist")
        hits += int((d <= radii[None, :]).any(dim=1).sum())
    return hits / len(queries)


def precision_recall(real, fake, k=3):
    real, fake = real.double(), fake.double()
    precision = inside_manifold(fake, real, knn_radii(real, k))
    recall = inside_manifold(real, fake, knn_radii(fake, k))
    return precision, recall


# ------------------------------------------------------------------------------------------------
# Data: Tessera's image data set files (docs/DATA.md): images uint8 [N, H, W, C], labels [N].

def read_images(path, limit=None):
    if not os.path.exists(path):
        raise SystemExit(f"{path}: no such data set (build/tessera data import fashion-mnist --out datasets/fmnist)")
    with h5py.File(path, "r") as f:
        n = f["images"].shape[0] if limit is None else min(limit, f["images"].shape[0])
        images = torch.from_numpy(np.asarray(f["images"][:n]))
        labels = torch.from_numpy(np.asarray(f["labels"][:n]).astype(np.int64)) if "labels" in f else None
    if images.dtype != torch.uint8 or images.dim() != 4:
        raise SystemExit(f"{path}: images must be uint8 [N, H, W, C]")
    return images, labels


class Loader:
    """Shuffled every epoch, the last batch of an epoch short (train/: drop_last false)."""

    def __init__(self, n, batch, gen):
        self.n, self.batch, self.gen, self.order, self.pos = n, batch, gen, None, 0

    def next(self):
        if self.order is None or self.pos >= self.n:
            self.order, self.pos = torch.randperm(self.n, generator=self.gen), 0
        idx = self.order[self.pos: self.pos + self.batch]
        self.pos += self.batch
        return idx


# ------------------------------------------------------------------------------------------------
# Training.

def build_model(args):
    torch.manual_seed(args.seed)
    return DiT(input_size=7, in_channels=4, patch_size=args.patch_size, width=args.width, depth=args.depth,
               heads=args.heads, mlp_ratio=args.mlp_ratio, num_classes=10, learned_pos_embed=args.learned_pos_embed,
               frequency_dim=args.frequency_dim)


def make_optimizer(model, args):
    """AdamW; weight decay (when set) on >= 2-D weights but not pos_embed or the label table."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        (no_decay if p.ndim <= 1 or "pos_embed" in name or "embedding_table" in name else decay).append(p)
    return torch.optim.AdamW([{"params": decay, "weight_decay": args.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=args.lr, betas=tuple(args.betas), eps=args.adam_eps)


def lr_at(step, args):
    """train/schedule.cpp: linear warm-up from lr/warmup, then half-cosine reaching min_lr at the last step."""
    warmup = min(args.warmup, args.steps)
    if step < warmup:
        return args.lr * (step + 1) / warmup
    span = args.steps - warmup
    t = 1.0 if span <= 1 else min(max((step - warmup) / (span - 1), 0.0), 1.0)
    return args.min_lr + (args.lr - args.min_lr) * 0.5 * (1 + math.cos(math.pi * t))


def autocast_for(args):
    if args.bf16:
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


class Average:
    """train/ema.cpp: average = decay * average + (1 - decay) * weights after every step."""

    def __init__(self, model, decay):
        self.decay = decay
        self.weights = {n: p.detach().clone() for n, p in model.named_parameters()}

    @torch.no_grad()
    def update(self, model):
        if self.decay <= 0:
            return
        for n, p in model.named_parameters():
            self.weights[n].mul_(self.decay).add_(p.detach(), alpha=1 - self.decay)

    def model(self, model):
        """A copy of the model holding the average (the trained weights when decay is 0)."""
        averaged = copy.deepcopy(model)
        if self.decay > 0:
            with torch.no_grad():
                for n, p in averaged.named_parameters():
                    p.copy_(self.weights[n])
        return averaged.eval()


def train_step(model, opt, average, diffusion, vae, scale, images, labels, step, args, autocast, gen):
    for g in opt.param_groups:
        g["lr"] = lr_at(step, args)
    x0 = encode(vae, images) * scale  # frozen, fp32
    x_t, t, target = diffusion.training_inputs(x0, gen)
    y = labels.clone()
    y[torch.rand(y.shape, generator=gen) < args.class_dropout] = model.num_classes
    with autocast():
        loss = F.mse_loss(model(x_t, t, y).float(), target)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if args.clip > 0:
        torch.nn.utils.clip_grad_norm_(model.parameters(), args.clip)
    opt.step()
    average.update(model)
    return loss.item()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def save_weights(path, model, average, vae, scale, args):
    """Tessera's latent_dit layout (nn/latent_diffusion.h): params/dit.<name> (the EMA weights and the
    fixed pos_embed), params/vae.<name>, params/latent_scale; no meta, optimizer or ema/ groups."""
    tmp = path + ".tmp"
    with h5py.File(tmp, "w") as f:
        ema = average.model(model)
        for name, t in list(ema.named_parameters()) + list(ema.named_buffers()):
            f.create_dataset(f"params/dit.{name}", data=t.detach().float().numpy())
        for name, t in vae.named_parameters():
            f.create_dataset(f"params/vae.{name}", data=t.detach().float().numpy())
        f.create_dataset("params/latent_scale", data=np.float32(scale))
        f.attrs["config"] = json.dumps(model.config)
        f.attrs["diffusion"] = json.dumps({"schedule": args.schedule, "prediction": args.prediction,
                                           "timesteps": args.timesteps})
        f.attrs["written_by"] = "bench/dit_torch.py"
    os.replace(tmp, path)


def write_grid(path, images, labels, classes, per_row):
    try:
        from PIL import Image
    except ImportError:
        print(f"--grid {path}: this Python has no PIL; no grid written", file=sys.stderr)
        return False
    size, pad = images.shape[-1], 2
    grid = np.zeros((classes * (size + pad) + pad, per_row * (size + pad) + pad), dtype=np.uint8)
    for c in range(classes):
        rows = images[labels == c][:per_row]
        for j, img in enumerate(rows):
            y0, x0 = pad + c * (size + pad), pad + j * (size + pad)
            grid[y0: y0 + size, x0: x0 + size] = (img[0].clamp(0, 1) * 255 + 0.5).to(torch.uint8).numpy()
    Image.fromarray(grid, mode="L").save(path)
    return True


@torch.no_grad()
def evaluate(model, vae, scale, diffusion, vit, train_images, test_images, args, gen):
    n = args.eval_samples
    if n < model.num_classes:
        raise SystemExit(f"--eval-samples {n}: at least one per class ({model.num_classes})")
    y = torch.arange(n) * model.num_classes // n  # sample i asks for class floor(i * classes / n), as Tessera
    start, chunks = time.perf_counter(), []
    for i in range(0, n, args.eval_batch):
        chunks.append(diffusion.sample(model, y[i: i + args.eval_batch], args.sample_steps, args.sampler,
                                       args.guidance, gen, (model.in_channels, 7, 7)))
        done = min(i + args.eval_batch, n)
        rate = done / (time.perf_counter() - start)
        print(f"sampled {done}/{n} ({rate:.1f} images/s, ETA {(n - done) / rate:.0f} s)", file=sys.stderr, flush=True)
    latents = torch.cat(chunks)
    images = torch.cat([vae.decoder(latents[i: i + 500] / scale) for i in range(0, n, 500)])
    if len(test_images) < n or len(train_images) < n:
        raise SystemExit(f"--eval-samples {n}: more than the data sets hold")
    to_float = lambda u8: u8.permute(0, 3, 1, 2).float() / 255
    gen_feats, gen_preds = classifier_outputs(vit, images)
    test_feats, _ = classifier_outputs(vit, to_float(test_images[:n]))
    train_feats, _ = classifier_outputs(vit, to_float(train_images[:n]))
    precision, recall = precision_recall(test_feats, gen_feats, k=3)
    metrics = {"fd_vit": frechet_distance(gen_feats, test_feats),
               "fd_vit_floor": frechet_distance(train_feats, test_feats),
               "sample_accuracy": float((gen_preds == y).double().mean()),
               "precision": precision, "recall": recall}
    return metrics, images, y


def run_train(args):
    gen = torch.Generator().manual_seed(args.seed)
    model = build_model(args)
    vae = load_vae(args.vae)
    train_images, train_labels = read_images(os.path.join(args.data, "train.h5"))
    if train_labels is None:
        raise SystemExit(f"{args.data}/train.h5: no labels (the DiT is class-conditional)")
    scale = measure_latent_scale(vae, train_images)
    vit = load_classifier(args.classifier) if args.eval_samples else None
    print(f"DiT {sum(p.numel() for p in model.parameters())} parameters; latent_scale {scale:.6f}; "
          f"{args.steps} steps of {args.batch}", file=sys.stderr, flush=True)
    diffusion = Diffusion(args.schedule, args.timesteps, args.prediction)
    opt = make_optimizer(model, args)
    average = Average(model, args.ema)
    loader = Loader(len(train_images), args.batch, gen)
    autocast = autocast_for(args)
    model.train()
    start, loss, recent = time.perf_counter(), float("nan"), []
    for step in range(args.steps):
        idx = loader.next()
        loss = train_step(model, opt, average, diffusion, vae, scale, train_images[idx], train_labels[idx], step,
                          args, autocast, gen)
        recent = (recent + [loss])[-100:]
        if (step + 1) % args.log_every == 0 or step + 1 == args.steps:
            rate = (step + 1) / (time.perf_counter() - start)
            print(f"step {step + 1}/{args.steps} loss {loss:.4f} (mean of last {len(recent)} {np.mean(recent):.4f}) "
                  f"lr {lr_at(step, args):.3e} {rate:.2f} it/s ETA {(args.steps - step - 1) / rate:.0f} s",
                  file=sys.stderr, flush=True)
    train_seconds = time.perf_counter() - start
    if args.save:
        save_weights(args.save, model, average, vae, scale, args)
    out = {"mode": "train", "steps": args.steps, "batch": args.batch,
           "steps_per_s": round(args.steps / train_seconds, 4) if args.steps else None,
           "final_loss": round(loss, 5) if args.steps else None,
           "mean_loss_last_100": round(float(np.mean(recent)), 5) if recent else None,
           "latent_scale": round(scale, 6), "width": args.width, "depth": args.depth, "heads": args.heads,
           "patch_size": args.patch_size, "schedule": args.schedule, "prediction": args.prediction,
           "lr": args.lr, "warmup": args.warmup, "ema": args.ema, "class_dropout": args.class_dropout}
    if args.eval_samples:
        eval_start = time.perf_counter()
        ema = average.model(model)
        metrics, images, labels = evaluate(ema, vae, scale, diffusion, vit, train_images,
                                           read_images(os.path.join(args.data, "test.h5"))[0], args,
                                           torch.Generator().manual_seed(args.sample_seed))
        out.update({k: round(v, 4) for k, v in metrics.items()})
        out.update(eval_samples=args.eval_samples, sampler=args.sampler, sample_steps=args.sample_steps,
                   guidance=args.guidance, eval_seconds=round(time.perf_counter() - eval_start, 1))
        if args.grid and write_grid(args.grid, images, labels, ema.num_classes, 8):
            print(f"wrote {args.grid}", file=sys.stderr)
    out.update(bf16=args.bf16, seed=args.seed, threads=args.threads, torch=torch.__version__,
               peak_rss_mb=peak_rss_mb())
    print(json.dumps(out))


def run_bench(args):
    """Training steps/s (median step, as `tessera bench`): a step encodes a batch with the frozen VAE,
    draws t, noise and dropped labels, and runs the DiT's forward, loss, backward, clipping, AdamW and
    the EMA update. One real batch (random pixels without --data) reused; random VAE weights without --vae."""
    import torch_bench
    from autoencoder_torch import VAE
    gen = torch.Generator().manual_seed(args.seed)
    model = build_model(args)
    if args.vae:
        vae = load_vae(args.vae)
    else:
        vae = VAE(latent=4).eval().requires_grad_(False)
    path = os.path.join(args.data, "train.h5")
    if os.path.exists(path):
        images, labels = read_images(path, limit=args.batch)
    else:
        images = torch.randint(0, 256, (args.batch, 28, 28, 1), dtype=torch.uint8, generator=gen)
        labels = torch.randint(0, 10, (args.batch,), generator=gen)
    diffusion = Diffusion(args.schedule, args.timesteps, args.prediction)
    opt = make_optimizer(model, args)
    average = Average(model, args.ema)
    autocast = autocast_for(args)
    args.steps, timed = args.steps + args.bench_warmup, args.steps
    model.train()
    seconds = []
    for step in range(args.steps):
        if step == args.bench_warmup:
            cpu_start = time.process_time()
        start = time.perf_counter()
        loss = train_step(model, opt, average, diffusion, vae, 1.0, images, labels, step, args, autocast, gen)
        seconds.append(time.perf_counter() - start)
    args.precision = "bf16" if args.bf16 else "fp32"
    torch_bench.report("dit", args, seconds[args.bench_warmup:], args.bench_warmup, args.batch,
                       cpu_s_per_step=(time.process_time() - cpu_start) / timed, width=args.width, depth=args.depth,
                       heads=args.heads, patch_size=args.patch_size, final_loss=loss)


# ------------------------------------------------------------------------------------------------
# The forward/backward agreement check against a dump.

CONFIG_KEYS = {"input_size": int, "in_channels": int, "patch_size": int, "width": int, "depth": int, "heads": int,
               "mlp_ratio": float, "num_classes": int, "learned_pos_embed": bool, "frequency_dim": int}


def read_config(f):
    if "config" in f.attrs:
        raw = f.attrs["config"]
        found = json.loads(raw.decode() if isinstance(raw, bytes) else str(raw))
    elif "config" in f:
        found = dict(f["config"].attrs)
    else:
        found = dict(f.attrs)
    missing = [k for k in CONFIG_KEYS if k not in found]
    if missing:
        raise SystemExit(f"config: {missing} missing (attributes of the group `config`, of the file, or JSON in "
                         f"the attribute `config`)")
    out = {}
    for key, kind in CONFIG_KEYS.items():
        value = np.asarray(found[key]).reshape(-1)[0] if not isinstance(found[key], (str, bytes)) else found[key]
        out[key] = bool(int(value)) if kind is bool and not isinstance(value, (str, bytes)) else \
            (str(value).lower() in ("1", "true") if kind is bool else kind(value))
    return out


def relative_error(a, b):
    """max |a - b| / max(max |b|, 1e-6), NaN when either holds one."""
    a, b = a.double(), b.double()
    if not (torch.isfinite(a).all() and torch.isfinite(b).all()):
        return float("nan"), float("nan")
    diff = float((a - b).abs().max()) if b.numel() else 0.0
    return diff, diff / max(float(b.abs().max()) if b.numel() else 0.0, 1e-6)


def run_check(dump, tol):
    """0 when every tensor agrees within tol, else 1."""
    torch.use_deterministic_algorithms(True)
    with h5py.File(dump, "r") as f:
        cfg = read_config(f)
        params = {n: np.asarray(f["params"][n][()]) for n in f["params"]}
        grads = {n: np.asarray(f["grads"][n][()]) for n in f["grads"]} if "grads" in f else {}
        want = {n: np.asarray(f[n][()]) for n in ("x", "t", "y", "target", "output", "loss") if n in f}
    absent = [n for n in ("x", "t", "y", "target", "output", "loss") if n not in want]
    if absent:
        raise SystemExit(f"{dump}: no {absent}")
    model = DiT(**cfg).double()
    problems, rows = [], []
    own = dict(model.named_parameters())
    for n, p in own.items():
        if n not in params:
            problems.append(f"params/{n} is missing from the dump")
        elif tuple(params[n].shape) != tuple(p.shape):
            problems.append(f"params/{n} has shape {tuple(params[n].shape)}, the model {tuple(p.shape)}")
        else:
            with torch.no_grad():
                p.copy_(torch.from_numpy(params[n].astype(np.float64)))
    if not cfg["learned_pos_embed"]:  # Tessera's fixed table against the spec's
        if "pos_embed" not in params:
            problems.append("params/pos_embed (the fixed table) is missing from the dump")
        else:
            ref = torch.from_numpy(sincos_pos_embed(cfg["width"], model.grid))[None]
            got = torch.from_numpy(params["pos_embed"].astype(np.float64))
            if tuple(got.shape) != tuple(ref.shape):
                problems.append(f"params/pos_embed has shape {tuple(got.shape)}, the model {tuple(ref.shape)}")
            else:
                rows.append(("params/pos_embed (fixed table)",) + relative_error(got, ref))
            model.pos_embed = ref  # the reference computes with the spec's table
    problems += [f"params/{n} names no parameter of the model" for n in params if n not in own and n != "pos_embed"]
    x = torch.from_numpy(want["x"].astype(np.float64)).requires_grad_(True)
    t = torch.from_numpy(want["t"].astype(np.float64))
    y = torch.from_numpy(want["y"].astype(np.int64))
    target = torch.from_numpy(want["target"].astype(np.float64))
    if y.min() < 0 or y.max() > cfg["num_classes"]:
        problems.append(f"y holds labels outside 0..{cfg['num_classes']}")
        y = y.clamp(0, cfg["num_classes"])
    out = model(x, t, y)
    loss = F.mse_loss(out, target)
    loss.backward()
    rows.insert(0, ("output",) + relative_error(torch.from_numpy(want["output"]), out.detach())
                if tuple(want["output"].shape) == tuple(out.shape) else ("output", float("nan"), float("nan")))
    rows.insert(1, ("loss",) + relative_error(torch.tensor([float(want["loss"])]), loss.detach().reshape(1)))
    expected = {"x": x.grad, **{n: p.grad for n, p in own.items()}}
    for n, g in expected.items():
        if n not in grads:
            problems.append(f"grads/{n} is missing from the dump")
        elif tuple(grads[n].shape) != tuple(g.shape):
            problems.append(f"grads/{n} has shape {tuple(grads[n].shape)}, expected {tuple(g.shape)}")
        else:
            rows.append((f"grads/{n}",) + relative_error(torch.from_numpy(grads[n]), g))
    problems += [f"grads/{n} names no parameter of the model" for n in grads if n not in expected]
    print(f"check {dump}: {json.dumps(cfg)}")
    print(f"  N={x.shape[0]} loss torch (float64) {loss.item():.10g}, dump {float(want['loss']):.10g}")
    for name, abs_err, rel_err in rows:
        print(f"  {name:<48} max abs {abs_err:.3e}  rel {rel_err:.3e}{'' if rel_err <= tol else '  FAIL'}")
    for p in problems:
        print(f"  {p}")
    failed = [r[0] for r in rows if not r[2] <= tol]  # `not <=` also catches NaN
    worst = max(rows, key=lambda r: r[2] if r[2] == r[2] else float("inf"))
    verdict = "OK" if not failed and not problems else "FAIL " + ", ".join(failed[:5] + problems[:2])
    print(f"{len(rows)} tensors compared, tol {tol:g}, worst {worst[0]} {worst[2]:.3e}: {verdict}")
    return 1 if failed or problems else 0


def run_pack(folder, dump):
    """folder/manifest.txt: lines `attr NAME VALUE` (config attributes: integers, reals, true/false)
    and `tensor NAME f32|f64|i64 FILE DIM...` (raw little-endian FILE in the folder; no DIMs: a scalar)
    -> the HDF5 dump `check` reads (config attributes on the group `config`)."""
    kinds = {"f32": "<f4", "f64": "<f8", "i64": "<i8"}
    with open(os.path.join(folder, "manifest.txt")) as m, h5py.File(dump, "w") as f:
        config = f.create_group("config")
        for line in m:
            fields = line.split()
            if not fields:
                continue
            if fields[0] == "attr" and len(fields) == 3:
                value = fields[2]
                config.attrs[fields[1]] = (value == "true") if value in ("true", "false") else \
                    (int(value) if re.fullmatch(r"-?\d+", value) else float(value))
            elif fields[0] == "tensor" and len(fields) >= 4 and fields[2] in kinds:
                shape = tuple(int(d) for d in fields[4:])
                data = np.fromfile(os.path.join(folder, fields[3]), dtype=kinds[fields[2]])
                if data.size != int(np.prod(shape)):
                    raise SystemExit(f"pack: {fields[1]}: {data.size} values in {fields[3]}, shape {shape}")
                f.create_dataset(fields[1], data=data.reshape(shape))
            else:
                raise SystemExit(f"pack: cannot read manifest line {line.strip()!r}")
    return 0


def run_into(tessera_ckpt, saved, out):
    """OUT = a copy of the Tessera checkpoint with every weight in SAVED (train --save: params/<name>)
    written over its params/<name> and, where the average has it, ema/<name>: `tessera eval OUT`
    then scores PyTorch's weights with Tessera's pipeline. A name or shape SAVED has and the
    checkpoint lacks is an error; OUT is written beside and renamed, never over an input."""
    if os.path.abspath(out) in (os.path.abspath(tessera_ckpt), os.path.abspath(saved)):
        raise SystemExit(f"into: {out} is an input; name a new file")
    tmp = out + ".tmp"
    shutil.copyfile(tessera_ckpt, tmp)
    with h5py.File(saved, "r") as src, h5py.File(tmp, "r+") as dst:
        names = list(src["params"].keys())
        for name in names:
            value = src["params"][name]
            key = f"params/{name}"
            if key not in dst or dst[key].shape != value.shape:
                dst.close()
                os.remove(tmp)
                raise SystemExit(f"into: {tessera_ckpt} has no {key} of shape {value.shape}")
            dst[key][...] = value[...]
            if f"ema/{name}" in dst:  # the average holds the trained weights only (no buffers, no VAE)
                dst[f"ema/{name}"][...] = value[...]
    os.replace(tmp, out)
    print(f"{out}: {len(names)} weights from {saved} in a copy of {tessera_ckpt}")
    return 0


# ------------------------------------------------------------------------------------------------

def main():
    r = RECIPE
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["check", "pack", "train", "bench", "into"])
    p.add_argument("paths", nargs="*", help="check: DUMP.h5; pack: DIR DUMP.h5; into: TESSERA.h5 SAVED.h5 OUT.h5")
    p.add_argument("--tol", type=float, default=1e-4, help="check: largest relative error per tensor")
    p.add_argument("--vae", help="train (bench: optional): the frozen VAE, a Tessera checkpoint of recipes/vae_fmnist.yaml")
    p.add_argument("--classifier", help="train: the Tessera ViT checkpoint whose pooled features the metrics use")
    p.add_argument("--data", default="datasets/fmnist", help="folder with train.h5 and test.h5 (tessera data import)")
    p.add_argument("--steps", type=int, default=None, help=f"train: optimizer steps (default {r['steps']}); bench: timed steps (20)")
    p.add_argument("--batch", type=int, default=r["batch"])
    p.add_argument("--lr", type=float, default=r["lr"])
    p.add_argument("--min-lr", type=float, default=r["min_lr"])
    p.add_argument("--warmup", type=int, default=r["warmup"], help="linear warm-up steps")
    p.add_argument("--weight-decay", type=float, default=r["weight_decay"])
    p.add_argument("--betas", type=float, nargs=2, default=list(r["betas"]))
    p.add_argument("--adam-eps", type=float, default=r["adam_eps"])
    p.add_argument("--clip", type=float, default=r["clip"], help="gradient norm clipping (0 = off)")
    p.add_argument("--ema", type=float, default=r["ema"], help="EMA decay of the weights (0 = evaluate the trained weights)")
    p.add_argument("--width", type=int, default=r["width"])
    p.add_argument("--depth", type=int, default=r["depth"])
    p.add_argument("--heads", type=int, default=r["heads"])
    p.add_argument("--patch-size", type=int, default=r["patch_size"])
    p.add_argument("--mlp-ratio", type=float, default=r["mlp_ratio"])
    p.add_argument("--frequency-dim", type=int, default=r["frequency_dim"])
    p.add_argument("--learned-pos-embed", action="store_true", default=r["learned_pos_embed"])
    p.add_argument("--schedule", choices=["linear", "cosine"], default=r["schedule"])
    p.add_argument("--prediction", choices=["eps", "v"], default=r["prediction"])
    p.add_argument("--timesteps", type=int, default=r["timesteps"])
    p.add_argument("--class-dropout", type=float, default=r["class_dropout"])
    p.add_argument("--guidance", type=float, default=r["guidance"], help="classifier-free guidance scale (1 = none)")
    p.add_argument("--sample-steps", type=int, default=r["sample_steps"])
    p.add_argument("--sampler", choices=["ddim", "ddpm"], default=r["sampler"])
    p.add_argument("--sample-seed", type=int, default=r["sample_seed"], help="seeds the sampling noise (torch's generator)")
    p.add_argument("--eval-samples", type=int, default=r["eval_samples"], help="generated images (n/10 per class; 0 = no evaluation)")
    p.add_argument("--eval-batch", type=int, default=500, help="images sampled together")
    p.add_argument("--bf16", action="store_true", help="forward and loss under torch.autocast(cpu, bfloat16)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=r["seed"])
    p.add_argument("--save", help="train: write the EMA weights as Tessera's latent_dit names them (params/dit.<name>, "
                   "params/vae.<name>, params/latent_scale) to this HDF5 file")
    p.add_argument("--grid", help="train: a PNG of the first 8 samples of each class, a row per class (needs PIL)")
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--bench-warmup", type=int, default=3, help="bench: untimed steps first")
    p.add_argument("--json", action="store_true", help="bench: one JSON line instead of text")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "check":
        if len(args.paths) != 1:
            p.error("check needs the dump file")
        sys.exit(run_check(args.paths[0], args.tol))
    if args.mode == "pack":
        if len(args.paths) != 2:
            p.error("pack needs DIR and DUMP.h5")
        sys.exit(run_pack(*args.paths))
    if args.mode == "into":
        if len(args.paths) != 3:
            p.error("into needs TESSERA.h5 SAVED.h5 OUT.h5")
        sys.exit(run_into(*args.paths))
    if args.mode == "train":
        if not args.vae or (args.eval_samples and not args.classifier):
            p.error("train needs --vae and (unless --eval-samples 0) --classifier")
        args.steps = r["steps"] if args.steps is None else args.steps
        run_train(args)
    else:
        args.steps = 20 if args.steps is None else args.steps
        run_bench(args)


if __name__ == "__main__":
    main()
