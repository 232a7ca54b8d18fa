#!/usr/bin/env python3
"""PyTorch reference for Tessera's `vlm` model (issue 17, PaliGemma-style prefix LM on scenes; issue 18's fusions).

The model, vocabulary, sequence layout, prefix-LM mask, loss, task mixture and evaluation of
docs/VLM.md (and nn/vlm.h, train/tasks/vlm.cpp), written plainly in PyTorch: it defines the numbers and the speed that
Tessera's `vlm` must match. Run with a Python that has torch, h5py, numpy, pycocoevalcap and
pycocotools (e.g. /work/venv-torch/bin/python):

  vlm_torch.py check DUMP.h5 [--tol 1e-4]     # Tessera's forward/backward dump against torch
  vlm_torch.py train --data datasets/scenes --init runs/siglip_scenes/last.h5 --steps N --threads 2 \
      [--batch 64 --lr 1e-3 --warmup 100 --no-freeze-image --bf16 --save OUT.h5 ...]   # then evaluates
      [--fusion cross_attention --cross-attention-every 2 --init-lm TEXT_LM.h5 --freeze-lm]  # as Tessera's
      [--fusion dual_token --content-grid 1] [--fusion none]                              # model.fusion
      [--data datasets/clips8 --frames 8]     # clips (data import scenes --frames 8; model.frames)
  vlm_torch.py bench --steps 20 --threads 2 [--bf16]
  vlm_torch.py selftest --data datasets/scenes # proves `check` passes and fails, the mask, the KV
                                               # cache and the evaluation protocol (on true texts;
                                               # --data datasets/clips8: the clips' protocol)

Model: the SigLIP image tower (timm ViT, 64x64x1, patch 8, width 192, depth 6, 3 heads, MLP 768,
LayerNorm eps 1e-6, no CLS; or a stem of 3x3 stride-2 convolutions, model.image.patch_stem: conv, read off
the checkpoint's names) gives 64 patch tokens after its final LayerNorm; a linear projector maps
them to the LM width; the LM is a pre-LN transformer (width 192, depth 4, 3 heads, MLP 768, eps 1e-5)
over [image tokens][BOS prefix SEP suffix EOS PAD...] with one learned position table, full attention
over image + BOS + prefix + SEP and causal attention after; an LM head without bias predicts the next
id over V = 260 + loc_bins (bytes, PAD, BOS, EOS, SEP, <locNNNN>). Loss: cross-entropy on the suffix
and EOS. Training (`train`, `bench`): AdamW, linear warm-up then cosine to 0, gradient clipping, the
image tower frozen by default. Evaluation: greedy decoding with a KV cache, batched across scenes;
CIDEr-D / BLEU-4 (pycocoevalcap), VQA exact match, count accuracy, COCO AP (pycocotools).
`train` and `bench` print one JSON line on stdout; progress goes to stderr.
"""
import argparse
import contextlib
import io
import json
import math
import os
import resource
import sys
import time

import h5py
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

# ------------------------------------------------------------------------------------------------
# Vocabulary: 0..255 bytes, then the specials, then the location tokens.

PAD, BOS, EOS, SEP = 256, 257, 258, 259
FIRST_LOC = 260
IGNORE = -100
MEAN, STD = 0.0948, 0.2372
IMAGE_SIZE = 64
QUESTION_TYPES = ["count", "existence", "place", "size"]


def vocab_size(loc_bins):
    return FIRST_LOC + loc_bins


def encode(text, loc_bins):
    """Text -> ids: `<locNNNN>` (four digits, NNNN < loc_bins) is one id, every other byte its own."""
    data, ids, i = text.encode("utf-8"), [], 0
    while i < len(data):
        token = data[i: i + 9]
        if len(token) == 9 and token[:4] == b"<loc" and token[8:9] == b">" and token[4:8].isdigit():
            bin_ = int(token[4:8])
            if bin_ < loc_bins:
                ids.append(FIRST_LOC + bin_)
                i += 9
                continue
        ids.append(data[i])
        i += 1
    return ids


def decode(ids):
    """ids -> text: bytes as bytes, location ids as `<locNNNN>`, PAD/BOS/EOS/SEP dropped."""
    out = bytearray()
    for i in ids:
        if i < 256:
            out.append(i)
        elif i >= FIRST_LOC:
            out += f"<loc{i - FIRST_LOC:04d}>".encode()
    return out.decode("utf-8", errors="replace")


# ------------------------------------------------------------------------------------------------
# Words, as Tessera's C++ spells them (data/scene_text.cpp, nn/caption_metrics.cpp).

def noun_of(class_name):
    """data/scene_text.cpp Nouns: the name before '/', lower-cased, trailing spaces dropped."""
    return class_name.split("/")[0].lower().rstrip(" ")


def mirror_text(text):
    """data/scene_text.cpp mirror_text: each maximal run of ASCII letters 'left' <-> 'right'."""
    out, i = [], 0
    while i < len(text):
        if not (text[i].isascii() and text[i].isalpha()):
            out.append(text[i])
            i += 1
            continue
        end = i
        while end < len(text) and text[end].isascii() and text[end].isalpha():
            end += 1
        word = text[i:end]
        out.append("right" if word == "left" else "left" if word == "right" else word)
        i = end
    return "".join(out)


_ASCII_PUNCT = set(range(ord("!"), ord("/") + 1)) | set(range(ord(":"), ord("@") + 1)) | \
    set(range(ord("["), ord("`") + 1)) | set(range(ord("{"), ord("~") + 1))
_ASCII_SPACE = {ord(" ")} | set(range(ord("\t"), ord("\r") + 1))


def caption_words(text):
    """nn/caption_metrics.cpp caption_words: ASCII space and punctuation split, ASCII lower-case."""
    words, word = [], bytearray()
    for c in text.encode("utf-8"):
        if c in _ASCII_SPACE or c in _ASCII_PUNCT:
            if word:
                words.append(word.decode("utf-8", errors="replace"))
            word = bytearray()
        else:
            word.append(c + 32 if ord("A") <= c <= ord("Z") else c)
    if word:
        words.append(word.decode("utf-8", errors="replace"))
    return words


def normalize_answer(answer):
    """nn/caption_metrics.cpp normalize_answer: caption_words without a/an/the, one space between."""
    return " ".join(w for w in caption_words(answer) if w not in ("a", "an", "the"))


# ------------------------------------------------------------------------------------------------
# Location tokens (nn/location_tokens.cpp): bins, the detection text, its parser.

def coordinate_to_bin(v, bins, size=IMAGE_SIZE):
    b = math.floor(v / size * bins) if not math.isnan(v) else 0
    return 0 if not b > 0 else int(min(b, bins - 1))


def bin_to_coordinate(b, bins, size=IMAGE_SIZE):
    return (b + 0.5) * size / bins


def format_detections(objects, bins):
    """objects: [(box (y0, x0, y1, x1), noun)] -> "<loc><loc><loc><loc> noun ; ..."."""
    return " ; ".join("".join(f"<loc{coordinate_to_bin(v, bins):04d}>" for v in box) + " " + noun
                      for box, noun in objects)


def parse_segment(segment, nouns, bins):
    """One ';'-separated segment, already trimmed -> (class_id, bins) or the fault's name."""
    if not segment:
        return "empty"
    found = []
    while segment.startswith("<loc"):
        token = segment[:9]
        if len(token) < 9 or token[8] != ">" or not all("0" <= c <= "9" for c in token[4:8]):
            return "bad_location_token"
        if len(found) == 4:
            return "too_many_locations"
        if int(token[4:8]) >= bins:
            return "bin_out_of_range"
        found.append(int(token[4:8]))
        segment = segment[9:]
    if len(found) < 4:
        return "too_few_locations"
    if found[2] < found[0] or found[3] < found[1]:
        return "inverted_box"
    name = segment.strip(" \t\n\r")
    if not name:
        return "missing_class"
    if name not in nouns:
        return "unknown_class"
    return nouns.index(name), found


# ------------------------------------------------------------------------------------------------
# Model: parameter names exactly as Tessera's checkpoint `params/<name>`.

class Attention(nn.Module):
    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.qkv, self.proj = nn.Linear(dim, 3 * dim), nn.Linear(dim, dim)

    def forward(self, x, mask=None, cache=None, positions=None):
        """mask: bool [B, 1, S, S] (True = may attend) or None (full). With a cache (dict k, v of
        [B, H, S_max, d]): positions None writes a prefill at 0..S-1; positions [B] writes one
        token per sample at its own position and attends to the cache up to it (causal)."""
        B, S, C = x.shape
        q, k, v = self.qkv(x).reshape(B, S, 3, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        if cache is not None:
            if "k" not in cache:
                shape = (B, self.heads, cache["length"], C // self.heads)
                cache["k"], cache["v"] = x.new_zeros(shape, dtype=k.dtype), x.new_zeros(shape, dtype=v.dtype)
            if positions is None:
                cache["k"][:, :, :S], cache["v"][:, :, :S] = k, v
            else:
                rows = torch.arange(B)
                cache["k"][rows, :, positions], cache["v"][rows, :, positions] = k[:, :, 0], v[:, :, 0]
                length = int(positions.max()) + 1
                k, v = cache["k"][:, :, :length], cache["v"][:, :, :length]
                mask = (torch.arange(length)[None, :] <= positions[:, None])[:, None, None, :]
        out = attention(q, k, v, mask)
        return self.proj(out.transpose(1, 2).reshape(B, S, C))


def attention(q, k, v, mask):
    """softmax(q k^T / sqrt(d) + mask) v: PyTorch 2's fused kernel, or the same written out for
    Debian's torch 1.13 (which the test suite's agreement check runs under)."""
    if hasattr(F, "scaled_dot_product_attention"):
        return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = scores.masked_fill(~mask, float("-inf"))
    return scores.softmax(-1) @ v


class Mlp(nn.Module):
    def __init__(self, dim, hidden):
        super().__init__()
        self.fc1, self.fc2 = nn.Linear(dim, hidden), nn.Linear(hidden, dim)

    def forward(self, x):
        return self.fc2(F.gelu(self.fc1(x)))


class Block(nn.Module):
    """Pre-LN transformer block, timm's ViT layout (norm1, attn.qkv, attn.proj, norm2, mlp.fc1/fc2)."""

    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=eps), Attention(dim, heads)
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=eps), Mlp(dim, hidden)

    def forward(self, x, mask=None, cache=None, positions=None):
        x = x + self.attn(self.norm1(x), mask, cache, positions)
        return x + self.mlp(self.norm2(x))


class PatchEmbed(nn.Module):
    def __init__(self, channels, patch, dim):
        super().__init__()
        self.proj = nn.Conv2d(channels, dim, patch, stride=patch)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ConvStem(nn.Module):
    """Tessera's patch_stem: conv (nn/conv_stem.h): log2(patch) 3x3 stride-2 convolutions, GELU between,
    32, 64, ... channels and `dim` out of the last; named proj.0, proj.2, ... as Tessera's."""

    def __init__(self, channels, patch, dim):
        super().__init__()
        n, layers, c = patch.bit_length() - 1, [], channels
        for i in range(n):
            if i > 0:
                layers.append(nn.GELU())
            out = dim if i == n - 1 else min(32 << i, dim)
            layers.append(nn.Conv2d(c, out, 3, stride=2, padding=1))
            c = out
        self.proj = nn.Sequential(*layers)

    def forward(self, x):
        return self.proj(x).flatten(2).transpose(1, 2)


class ImageTower(nn.Module):
    """The SigLIP image tower without pooling or head: all patch tokens after the final LayerNorm."""

    def __init__(self, channels, patch, width, depth, heads, hidden, num_patches, stem="patch"):
        super().__init__()
        self.patch_embed = (ConvStem if stem == "conv" else PatchEmbed)(channels, patch, width)
        self.pos_embed = nn.Parameter(torch.zeros(1, num_patches, width))
        self.blocks = nn.ModuleList([Block(width, heads, hidden, 1e-6) for _ in range(depth)])
        self.norm = nn.LayerNorm(width, eps=1e-6)

    def forward(self, images):
        x = self.patch_embed(images) + self.pos_embed
        for block in self.blocks:
            x = block(x)
        return self.norm(x)


class CrossAttention(nn.Module):
    """Queries from the text, keys and values from the image tokens (Tessera's MultiHeadCrossAttention:
    q, kv = k | v with the heads side by side, proj)."""

    def __init__(self, dim, heads):
        super().__init__()
        self.heads = heads
        self.q, self.kv, self.proj = nn.Linear(dim, dim), nn.Linear(dim, 2 * dim), nn.Linear(dim, dim)

    def forward(self, x, memory):
        B, S, C = x.shape
        q = self.q(x).reshape(B, S, self.heads, C // self.heads).transpose(1, 2)
        k, v = self.kv(memory).reshape(B, memory.shape[1], 2, self.heads, C // self.heads).permute(2, 0, 3, 1, 4)
        return self.proj(attention(q, k, v, None).transpose(1, 2).reshape(B, S, C))


class GatedCrossAttentionBlock(nn.Module):
    """LLaMA 3.2 Vision's layer: h += tanh(gate_attn) XAttn(norm1(h), image); h += tanh(gate_mlp) MLP(norm2(h))."""

    def __init__(self, dim, heads, hidden, eps):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim, eps=eps), CrossAttention(dim, heads)
        self.gate_attn = nn.Parameter(torch.zeros(1))
        self.norm2, self.mlp = nn.LayerNorm(dim, eps=eps), Mlp(dim, hidden)
        self.gate_mlp = nn.Parameter(torch.zeros(1))

    def forward(self, x, memory):
        x = x + self.gate_attn.tanh() * self.attn(self.norm1(x), memory)
        return x + self.gate_mlp.tanh() * self.mlp(self.norm2(x))


class DualToken(nn.Module):
    """LLaMA-VID's dual tokens as Tessera's DualTokenCompressor (nn/dual_token.h): a context token (the
    prompt's embeddings, through context_query, attend over the image's tower tokens; the mean over the
    prompt, projected) and content_grid^2 content tokens (block means of the token grid, projected)."""

    def __init__(self, feature_dim, lm_dim, grid, content_grid):
        super().__init__()
        self.grid, self.content_grid = grid, content_grid
        self.context_query = nn.Linear(lm_dim, feature_dim)
        self.context_projector, self.content_projector = nn.Linear(feature_dim, lm_dim), nn.Linear(feature_dim, lm_dim)

    def forward(self, x, text, prompt_lengths):
        B, T, Wi = x.shape[0], text.shape[1], x.shape[2]
        attended = attention(self.context_query(text)[:, None], x[:, None], x[:, None], None)[:, 0]  # [B, T, Wi]
        weights = (torch.arange(T)[None, :] < prompt_lengths[:, None]).to(attended.dtype)
        context = (weights[:, :, None] * attended).sum(1, keepdim=True) / prompt_lengths[:, None, None].to(attended.dtype)
        c, s = self.content_grid, self.grid // self.content_grid
        blocks = x.reshape(B, c, s, c, s, Wi).mean((2, 4)).reshape(B, c * c, Wi)
        return torch.cat([self.context_projector(context), self.content_projector(blocks)], 1)


def prefix_lm_mask(prefix_lengths, length):
    """Query i sees key j iff j < prefix_length or j <= i: bool [B, 1, S, S]."""
    j = torch.arange(length)
    causal = j[None, :] <= j[:, None]
    return (causal[None] | (j[None, None, :] < prefix_lengths[:, None, None]))[:, None]


class VLM(nn.Module):
    """cfg["fusion"]: prefix (PaliGemma, the default), cross_attention (LLaMA 3.2: a gated cross-attention
    layer after every cfg["cross_attention_every"]-th block, the sequence text only), dual_token (LLaMA-VID)
    or none (blind). cfg["frames"] F > 1: clips [B, F, C, H, W], each frame through the tower alone, its
    tokens (or dual tokens) plus frame_embedding[f], the frames in order (nn/vlm.h)."""

    def __init__(self, cfg):
        super().__init__()
        im, lm = cfg["image"], cfg["lm"]
        self.config = cfg
        self.fusion, self.every = cfg.get("fusion", "prefix"), int(cfg.get("cross_attention_every", 1))
        self.num_patches, self.text_context, self.loc_bins = cfg["num_patches"], cfg["text_context"], cfg["loc_bins"]
        content_grid = int(cfg.get("content_grid", 1))
        self.frames = int(cfg.get("frames", 1))
        # Image positions in the LM's sequence: the patch tokens (prefix) or the dual tokens, per frame.
        self.in_sequence = self.frames * {"prefix": self.num_patches, "dual_token": 1 + content_grid ** 2}.get(self.fusion, 0)
        if self.fusion != "none":
            self.visual = ImageTower(im["channels"], im["patch_size"], im["width"], im["depth"], im["heads"],
                                     im["mlp_hidden"], self.num_patches, im.get("stem", "patch"))
        if self.fusion == "dual_token":
            self.dual_token = DualToken(im["width"], lm["width"], math.isqrt(self.num_patches), content_grid)
        elif self.fusion != "none":
            self.projector = nn.Linear(im["width"], lm["width"])
        self.token_embedding = nn.Embedding(vocab_size(self.loc_bins), lm["width"])
        self.positional_embedding = nn.Parameter(torch.zeros(self.in_sequence + self.text_context, lm["width"]))
        if self.frames > 1 and self.fusion != "none":
            self.frame_embedding = nn.Parameter(torch.zeros(self.frames, lm["width"]))
        self.blocks = nn.ModuleList([Block(lm["width"], lm["heads"], lm["mlp_hidden"], 1e-5) for _ in range(lm["depth"])])
        if self.fusion == "cross_attention":
            self.cross_blocks = nn.ModuleList([GatedCrossAttentionBlock(lm["width"], lm["heads"], lm["mlp_hidden"], 1e-5)
                                               for _ in range(lm["depth"] // self.every)])
        self.ln_final = nn.LayerNorm(lm["width"], eps=1e-5)
        self.lm_head = nn.Linear(lm["width"], vocab_size(self.loc_bins), bias=False)
        self.frozen_image = False
        # Initialisation as Tessera's (nn/vlm.cpp; the random numbers differ): the image tower as
        # timm's ViT (trunc-normal 0.02, zero biases; stage 1 overwrites it anyway), the projector at
        # zero (weight and bias), and the LM as CLIP's text transformer: N(0, 0.02) token embedding,
        # N(0, 0.01) positions, attention/MLP weights scaled by width and the residual output
        # projections further by depth, zero biases, lm_head N(0, width^-1/2).
        if self.fusion != "none":
            for m in self.visual.modules():
                if isinstance(m, nn.Linear):
                    nn.init.trunc_normal_(m.weight, std=0.02)
                    if m.bias is not None:
                        nn.init.zeros_(m.bias)
            nn.init.trunc_normal_(self.visual.pos_embed, std=0.02)
        if self.fusion == "prefix":  # cross-attention keeps PyTorch's default: its zero gates hold the image back
            nn.init.zeros_(self.projector.weight)
            nn.init.zeros_(self.projector.bias)
        if self.fusion == "dual_token":  # as nn/dual_token.cpp: the query N(0, W^-1/2), the projections at zero
            nn.init.normal_(self.dual_token.context_query.weight, std=lm["width"] ** -0.5)
            for lin in (self.dual_token.context_projector, self.dual_token.content_projector):
                nn.init.zeros_(lin.weight)
            for lin in (self.dual_token.context_query, self.dual_token.context_projector, self.dual_token.content_projector):
                nn.init.zeros_(lin.bias)
        nn.init.normal_(self.token_embedding.weight, std=0.02)
        nn.init.normal_(self.positional_embedding, std=0.01)
        if hasattr(self, "frame_embedding"):
            nn.init.normal_(self.frame_embedding, std=0.01)
        width, depth = lm["width"], max(lm["depth"], 1)
        attn_std = width ** -0.5
        proj_std = attn_std * (2.0 * depth) ** -0.5
        fc_std = (2.0 * width) ** -0.5
        for b in self.blocks:
            nn.init.normal_(b.attn.qkv.weight, std=attn_std)
            nn.init.normal_(b.attn.proj.weight, std=proj_std)
            nn.init.normal_(b.mlp.fc1.weight, std=fc_std)
            nn.init.normal_(b.mlp.fc2.weight, std=proj_std)
            for lin in (b.attn.qkv, b.attn.proj, b.mlp.fc1, b.mlp.fc2):
                nn.init.zeros_(lin.bias)
        nn.init.normal_(self.lm_head.weight, std=attn_std)
        for b in getattr(self, "cross_blocks", []):
            for lin, std in ((b.attn.q, attn_std), (b.attn.kv, attn_std), (b.attn.proj, proj_std), (b.mlp.fc1, fc_std),
                             (b.mlp.fc2, proj_std)):
                nn.init.normal_(lin.weight, std=std)
                nn.init.zeros_(lin.bias)

    def cross_after(self, i):
        """The cross-attention layer after LM block i, or None."""
        if self.fusion != "cross_attention" or (i + 1) % self.every or (i + 1) // self.every > len(self.cross_blocks):
            return None
        return self.cross_blocks[(i + 1) // self.every - 1]

    def join_frames(self, per_frame):
        """[B F, M, W] -> [B, F M, W], each frame's tokens plus its frame embedding."""
        if self.frames == 1:
            return per_frame
        BF, M, W = per_frame.shape
        x = per_frame.reshape(BF // self.frames, self.frames, M, W) + self.frame_embedding[None, :, None]
        return x.reshape(BF // self.frames, self.frames * M, W)

    def image_tokens(self, images):
        """x_img [B, F N, W] = projector(image tower) of every frame (the tower's own tokens for dual_token,
        which the compressor reads with the prompt); without gradients into the tower when it is frozen."""
        B = images.shape[0]
        if self.frames > 1:
            if images.dim() != 5 or images.shape[1] != self.frames:
                raise SystemExit(f"images {tuple(images.shape)}: the model reads clips of {self.frames} frames")
            images = images.reshape(B * self.frames, *images.shape[2:])
        if self.frozen_image:
            with torch.no_grad():
                tokens = self.visual(images)
        else:
            tokens = self.visual(images)
        if self.fusion == "dual_token":
            return tokens.reshape(B, -1, tokens.shape[-1])
        return self.join_frames(self.projector(tokens))

    def embed(self, x_img, ids, positions, prompt_lengths=None):
        """prompt_lengths [B] (BOS to SEP) are what the dual tokens' context reads (each frame's the same)."""
        text = self.token_embedding(ids)
        if self.fusion == "dual_token":
            F_ = self.frames
            frames = x_img.reshape(x_img.shape[0] * F_, self.num_patches, x_img.shape[-1])
            x_img = self.join_frames(self.dual_token(frames, text.repeat_interleave(F_, 0),
                                                     prompt_lengths.repeat_interleave(F_, 0)))
        return (torch.cat([x_img, text], 1) if self.in_sequence else text) + self.positional_embedding[positions]

    def forward(self, images, ids, prefix_lengths):
        """logits [B, T, V] at the text positions: logits[b, t] predicts ids[b, t + 1]. prefix_lengths count
        the image positions in the sequence (the prefix fusion's patch tokens, else none)."""
        N, T = self.in_sequence, ids.shape[1]
        x_img = self.image_tokens(images) if self.fusion != "none" else None
        x = self.embed(x_img, ids, torch.arange(N + T), prefix_lengths - N)
        mask = prefix_lm_mask(prefix_lengths, N + T)
        for i, block in enumerate(self.blocks):
            x = block(x, mask)
            if (cross := self.cross_after(i)) is not None:
                x = cross(x, x_img)
        return self.lm_head(self.ln_final(x[:, N:]))


def lm_loss(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), targets.reshape(-1), ignore_index=IGNORE)


def default_config(lm_width=192, lm_depth=4, lm_heads=3, text_context=160, loc_bins=64, stem="patch",
                   fusion="prefix", cross_attention_every=1, content_grid=1, frames=1):
    return {"num_patches": 64, "loc_bins": loc_bins, "text_context": text_context, "frames": frames,
            "fusion": fusion, "cross_attention_every": cross_attention_every, "content_grid": content_grid,
            "image": {"channels": 1, "patch_size": 8, "width": 192, "depth": 6, "heads": 3, "mlp_hidden": 768,
                      "stem": stem},
            "lm": {"width": lm_width, "depth": lm_depth, "heads": lm_heads, "mlp_hidden": 4 * lm_width}}


def config_from_params(params, config):
    """Sizes from the parameters' shapes (they cannot lie); head counts from the dump's /config."""
    def heads(section):
        s = config.get(section, {})
        for key in ("heads", "num_heads"):
            if key in s:
                return int(s[key])
        raise SystemExit(f"config: no {section}.heads in {json.dumps(config)}")

    def depth(prefix):
        return len({n.split(".")[1 if not prefix else 2] for n in params if n.startswith(prefix + "blocks.")})

    fusion = ("none" if "visual.pos_embed" not in params
              else "cross_attention" if any(n.startswith("cross_blocks.") for n in params)
              else "dual_token" if "dual_token.context_query.weight" in params else "prefix")
    lm_width = params["token_embedding.weight"].shape[1]
    # Clips: the frame embedding's rows (a blind LM has none, and its frames are never read).
    frames = params["frame_embedding"].shape[0] if "frame_embedding" in params else int(config.get("frames", 1))
    cfg = {"fusion": fusion, "cross_attention_every": int(config.get("cross_attention_every", 1)),
           "content_grid": int(config.get("content_grid", 1)), "frames": frames,
           "loc_bins": params["token_embedding.weight"].shape[0] - FIRST_LOC,
           "lm": {"width": lm_width, "depth": depth(""), "heads": heads("lm"),
                  "mlp_hidden": params["blocks.0.mlp.fc1.weight"].shape[0]}}
    if fusion == "none":  # a blind LM: no tower; the image settings are never read
        cfg["num_patches"], cfg["image"] = int(config.get("num_patches", 0)), {}
    else:
        if "visual.patch_embed.proj.weight" in params:
            stem, patch = "patch", params["visual.patch_embed.proj.weight"].shape
        else:  # a conv stem: [width, channels] from the last and first convolutions, and patch = 2^convolutions
            convs = sorted(int(n.split(".")[3]) for n in params
                           if n.startswith("visual.patch_embed.proj.") and n.endswith(".weight"))
            if not convs:
                raise SystemExit("checkpoint: no visual.patch_embed.proj weights (neither a patch nor a conv stem)")
            first = params[f"visual.patch_embed.proj.{convs[0]}.weight"].shape
            last = params[f"visual.patch_embed.proj.{convs[-1]}.weight"].shape
            stem, patch = "conv", (last[0], first[1], 2 ** len(convs))
        cfg["num_patches"] = params["visual.pos_embed"].shape[1]
        cfg["image"] = {"channels": patch[1], "patch_size": patch[2], "width": patch[0], "stem": stem,
                        "depth": depth("visual."), "heads": heads("image"),
                        "mlp_hidden": params["visual.blocks.0.mlp.fc1.weight"].shape[0]}
    in_sequence = frames * {"prefix": cfg["num_patches"], "dual_token": 1 + cfg["content_grid"] ** 2}.get(fusion, 0)
    cfg["text_context"] = params["positional_embedding"].shape[0] - in_sequence
    if fusion == "cross_attention":
        layers = len({n.split(".")[1] for n in params if n.startswith("cross_blocks.")})
        if layers != cfg["lm"]["depth"] // cfg["cross_attention_every"]:
            raise SystemExit(f"config: {layers} cross-attention layers, but lm depth {cfg['lm']['depth']} and "
                             f"cross_attention_every {cfg['cross_attention_every']} make "
                             f"{cfg['lm']['depth'] // cfg['cross_attention_every']}")
    for key in ("num_patches", "loc_bins", "text_context"):
        if key in config and int(config[key]) != cfg[key]:
            raise SystemExit(f"config: {key} = {config[key]} but the parameters' shapes say {cfg[key]}")
    return cfg


def load_params(model, params, only_prefix=None):
    """Copies params/<name> into the model; every name of the file (or under the prefix, or any of a tuple of
    prefixes) must fit."""
    own = dict(model.named_parameters())
    names = [n for n in params if only_prefix is None or n.startswith(only_prefix)]
    if not names:
        raise SystemExit(f"checkpoint: no parameters{' under ' + str(only_prefix) if only_prefix else ''}")
    for n in names:
        if n not in own:
            raise SystemExit(f"checkpoint: parameter {n} is not in the model")
        if tuple(params[n].shape) != tuple(own[n].shape):
            raise SystemExit(f"checkpoint: {n} has shape {tuple(params[n].shape)}, the model {tuple(own[n].shape)}")
        with torch.no_grad():
            own[n].copy_(torch.as_tensor(np.asarray(params[n], dtype=np.float32)))
    missing = [n for n in own if (only_prefix is None or n.startswith(only_prefix)) and n not in params]
    if missing:
        raise SystemExit(f"checkpoint: missing {missing[:5]}{' ...' if len(missing) > 5 else ''}")
    return names


# ------------------------------------------------------------------------------------------------
# Sequences: [image][BOS prefix SEP suffix EOS][PAD ...], targets, prefix lengths.

class Batcher:
    def __init__(self, num_patches, text_context, loc_bins):
        self.N, self.context, self.loc_bins = num_patches, text_context, loc_bins
        self.truncated = 0

    def __call__(self, pairs):
        """pairs: [(prefix, suffix)] -> ids [B, T], prefix_lengths [B] (whole sequence), targets [B, T]."""
        rows, prefix_lengths = [], []
        for prefix, suffix in pairs:
            p, s = encode(prefix, self.loc_bins), encode(suffix, self.loc_bins)
            room = self.context - len(p) - 3
            if room < 0:
                raise SystemExit(f"prefix '{prefix}' needs {len(p) + 3} text positions, text_context is {self.context}")
            if len(s) > room:
                if self.truncated < 5:
                    print(f"warning: suffix of '{prefix}' cut from {len(s)} to {room} ids to fit text_context "
                          f"{self.context}", file=sys.stderr)
                self.truncated += 1
                s = s[:room]
            rows.append([BOS] + p + [SEP] + s + [EOS])
            prefix_lengths.append(self.N + 1 + len(p) + 1)
        T = max(len(r) for r in rows)
        ids = torch.full((len(rows), T), PAD, dtype=torch.long)
        for b, r in enumerate(rows):
            ids[b, : len(r)] = torch.tensor(r)
        prefix_lengths = torch.tensor(prefix_lengths)
        return ids, prefix_lengths, make_targets(ids, prefix_lengths, self.N)


def make_targets(ids, prefix_lengths, N):
    """targets[b, t] = ids[b, t+1] on the suffix and EOS (whole position N+t+1 >= prefix length), else ignored."""
    B, T = ids.shape
    targets = torch.full((B, T), IGNORE, dtype=torch.long)
    nxt = ids[:, 1:]
    keep = ((N + torch.arange(1, T))[None, :] >= prefix_lengths[:, None]) & (nxt != PAD)
    targets[:, : T - 1] = torch.where(keep, nxt, torch.full_like(nxt, IGNORE))
    return targets


# ------------------------------------------------------------------------------------------------
# Scenes: the data set in memory, the task mixture, the evaluation prompts.

class Scenes:
    def __init__(self, path, limit=None):
        with h5py.File(path, "r") as f:
            n = f["images"].shape[0] if limit is None else min(limit, f["images"].shape[0])
            self.images = f["images"][:n]                                      # uint8 [n, (F,) 64, 64, 1]
            self.frames = self.images.shape[1] if self.images.ndim == 5 else 1  # clips of F frames
            self.boxes = f["objects/boxes"][:n].astype(np.float64)             # [n, (F,) K, 4] y0 x0 y1 x1
            self.classes = f["objects/classes"][:n]
            self.count = f["objects/count"][:n]
            names = [s.decode() if isinstance(s, bytes) else str(s) for s in f["objects/classes"].attrs["class_names"]]
            self.nouns = [noun_of(c) for c in names]
            # Kept as h5py gives them (arrays of UTF-8 bytes), decoded when used: a list of a million
            # Python strings would double the resident memory of the training set.
            self._captions, self._questions, self._answers = f["captions"][:n], f["questions"][:n], f["answers"][:n]
            self._type_names = [s.decode() if isinstance(s, bytes) else str(s) for s in f["question_types"].attrs["names"]]
            self._question_types = f["question_types"][:n]
        self.size = n

    def captions(self, i):
        return [s.decode("utf-8") for s in self._captions[i]]

    def questions(self, i):
        """[(question, answer, type name)] of scene i, the 8 of the file in its order."""
        return [(q.decode("utf-8"), a.decode("utf-8"), self._type_names[t])
                for q, a, t in zip(self._questions[i], self._answers[i], self._question_types[i])]

    def objects(self, i, flip=False, frame=None):
        """[(class_id, (y0, x0, y1, x1))] of scene i, mirrored left-right when flip; of a clip, frame's
        (None: every frame's)."""
        if self.frames > 1 and frame is None:
            return [o for f in range(self.frames) for o in self.objects(i, flip, f)]
        count, boxes, classes = ((self.count[i], self.boxes[i], self.classes[i]) if self.frames == 1 else
                                 (self.count[i, frame], self.boxes[i, frame], self.classes[i, frame]))
        out = []
        for k in range(int(count)):
            y0, x0, y1, x1 = boxes[k]
            if flip:
                x0, x1 = IMAGE_SIZE - x1, IMAGE_SIZE - x0
            out.append((int(classes[k]), (y0, x0, y1, x1)))
        return out

    def present(self, i, frame=None):
        return sorted({c for c, _ in self.objects(i, frame=frame)})

    def image_batch(self, indices, flips=None):
        """[B, C, H, W], or [B, F, C, H, W] for clips (a flip mirrors every frame)."""
        images = torch.from_numpy(self.images[indices])
        x = (images.permute(0, 3, 1, 2) if self.frames == 1 else images.permute(0, 1, 4, 2, 3)).float()
        if flips is not None:
            x = torch.where(torch.as_tensor(flips).reshape(-1, *[1] * (x.dim() - 1)), x.flip(-1), x)
        return (x / 255 - MEAN) / STD

    def detection_suffix(self, i, prompt_classes, flip, bins, frame=None):
        objects = self.objects(i, flip, frame)
        ordered = []
        for c in prompt_classes:
            ordered += sorted([(box, self.nouns[c]) for oc, box in objects if oc == c], key=lambda o: (o[0][0], o[0][1]))
        return format_detections(ordered, bins)


def training_pair(scenes, i, task, flip, rng, bins):
    """(prefix, suffix) of one training sample; every text mirrored with the image."""
    mirror = mirror_text if flip else (lambda s: s)
    if task == "caption":
        captions = scenes.captions(i)
        return "caption", mirror(captions[rng.integers(len(captions))])
    if task == "answer":
        questions = scenes.questions(i)
        question, answer, _ = questions[rng.integers(len(questions))]
        return "answer " + mirror(question), mirror(answer)
    present = scenes.present(i)  # of a clip, in any frame; counts are over all frames
    if task == "count":
        c = present[rng.integers(len(present))] if rng.random() < 0.5 else int(rng.integers(len(scenes.nouns)))
        return "count " + scenes.nouns[c], str(sum(1 for oc, _ in scenes.objects(i) if oc == c))
    # A clip's detection names one frame: "detect in frame 3: bag ; coat" -> that frame's boxes.
    frame = int(rng.integers(scenes.frames)) if scenes.frames > 1 else None
    if frame is not None:
        present = scenes.present(i, frame)
    classes = present + [c for c in range(len(scenes.nouns)) if c not in present and rng.random() < 0.1]
    classes = [classes[k] for k in rng.permutation(len(classes))]
    return (detect_prompt([scenes.nouns[c] for c in classes], frame),
            scenes.detection_suffix(i, classes, flip, bins, frame))


def detect_prompt(names, frame=None):
    """"detect bag ; coat", or of a clip's frame (from 0) "detect in frame 3: bag ; coat"."""
    return ("detect" if frame is None else f"detect in frame {frame + 1}:") + "".join(
        (" ; " if k else " ") + n for k, n in enumerate(names))


def parse_task_weights(text):
    weights = {}
    for item in text.split(","):
        name, _, value = item.partition("=")
        if name not in ("caption", "detect", "answer", "count"):
            raise SystemExit(f"--task-weights: unknown task '{name}' (caption, detect, answer, count)")
        weights[name] = float(value)
    return weights


class Loader:
    """Shuffled per epoch, hflip 1/2, a task per sample drawn in proportion to the weights."""

    def __init__(self, scenes, batch, weights, batcher, rng):
        self.scenes, self.batch, self.batcher, self.rng = scenes, batch, batcher, rng
        self.tasks = list(weights)
        w = np.array([weights[t] for t in self.tasks])
        self.probabilities = w / w.sum()
        self.order, self.position = rng.permutation(scenes.size), 0

    def next(self):
        if self.position + self.batch > len(self.order):
            self.order, self.position = self.rng.permutation(self.scenes.size), 0
        indices = self.order[self.position: self.position + self.batch]
        self.position += self.batch
        flips = self.rng.random(len(indices)) < 0.5
        tasks = self.rng.choice(len(self.tasks), size=len(indices), p=self.probabilities)
        pairs = [training_pair(self.scenes, int(i), self.tasks[t], bool(f), self.rng, self.batcher.loc_bins)
                 for i, t, f in zip(indices, tasks, flips)]
        return (self.scenes.image_batch(indices, flips),) + self.batcher(pairs)


# ------------------------------------------------------------------------------------------------
# Generation: greedy decoding with a per-layer KV cache, batched across prompts.

@torch.no_grad()
def generate(model, x_img, prefixes, autocast):
    """x_img [B, N, W] projected image tokens, prefixes [str] -> (generated ids, their log-probs) per
    prompt, without the final EOS. Prompts are right-padded; each sample writes its tokens at its own
    positions, so the padding of a shorter prompt is overwritten before it could be attended to."""
    N, context, B = model.in_sequence, model.text_context, len(prefixes)
    prompts = [[BOS] + encode(p, model.loc_bins) + [SEP] for p in prefixes]
    P = max(len(p) for p in prompts)
    if P >= context:
        raise SystemExit(f"a prompt of {P} ids leaves no room in text_context {context}")
    ids = torch.full((B, P), PAD, dtype=torch.long)
    for b, p in enumerate(prompts):
        ids[b, : len(p)] = torch.tensor(p)
    prefix_lengths = torch.tensor([N + len(p) for p in prompts])
    caches = [{"length": N + context} for _ in model.blocks]
    with autocast():
        x = model.embed(x_img, ids, torch.arange(N + P), prefix_lengths - N)
        mask = prefix_lm_mask(prefix_lengths, N + P)
        for i, (block, cache) in enumerate(zip(model.blocks, caches)):
            x = block(x, mask, cache)
            if (cross := model.cross_after(i)) is not None:
                x = cross(x, x_img)
        last = x[torch.arange(B), prefix_lengths - 1][:, None]
        logits = model.lm_head(model.ln_final(last))[:, 0].float()
    out = [[] for _ in range(B)]
    scores = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    positions = prefix_lengths.clone()  # where the next generated token goes
    while True:
        logp = logits.log_softmax(-1)
        token = logp.argmax(-1)
        chosen = logp.gather(1, token[:, None])[:, 0]
        for b in torch.nonzero(~done)[:, 0].tolist():
            if int(token[b]) == EOS:
                done[b] = True
            else:
                out[b].append(int(token[b]))
                scores[b].append(float(chosen[b]))
                if positions[b] + 1 >= N + context:  # the token took the last text position
                    done[b] = True
        if bool(done.all()):
            return out, scores
        step_positions = positions.clamp(max=N + context - 1)  # finished samples write past their end, unread
        with autocast():
            x = model.token_embedding(token)[:, None] + model.positional_embedding[step_positions][:, None]
            for i, (block, cache) in enumerate(zip(model.blocks, caches)):
                x = block(x, cache=cache, positions=step_positions)
                if (cross := model.cross_after(i)) is not None:
                    x = cross(x, x_img)
            logits = model.lm_head(model.ln_final(x))[:, 0].float()
        positions = positions + 1


def generate_all(model, x_img_all, scene_of, prefixes, autocast, batch):
    """Generation for many (scene, prefix) prompts, `batch` prompts at a time."""
    ids, scores = [], []
    for s in range(0, len(prefixes), batch):
        rows = torch.as_tensor(scene_of[s: s + batch])
        i, sc = generate(model, None if x_img_all is None else x_img_all[rows], prefixes[s: s + batch], autocast)
        ids += i
        scores += sc
    return ids, scores


# ------------------------------------------------------------------------------------------------
# Evaluation (the spec's protocol on the first eval_scenes test scenes, no augmentation).

def caption_scores(candidates, references):
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    res = {i: [" ".join(caption_words(c))] for i, c in enumerate(candidates)}
    gts = {i: [" ".join(caption_words(r)) for r in refs] for i, refs in enumerate(references)}
    with contextlib.redirect_stdout(io.StringIO()):
        bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
        cider, _ = Cider().compute_score(gts, res)
    return float(bleu[3]), float(cider)


def xywh(box):
    y0, x0, y1, x1 = box
    return [float(x0), float(y0), float(x1 - x0), float(y1 - y0)]


def coco_ap(ground_truth, detections, images, classes):
    """ground_truth [(image, class, box)], detections [(image, class, box, score)] -> (AP@0.5:0.95, AP@0.5),
    101-point COCO AP per class averaged over the classes with ground truth."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    if not ground_truth or not detections:
        return 0.0, 0.0
    dataset = {"images": [{"id": i} for i in range(images)], "categories": [{"id": c} for c in range(classes)],
               "annotations": [{"id": k + 1, "image_id": i, "category_id": c, "bbox": xywh(b),
                                "area": xywh(b)[2] * xywh(b)[3], "iscrowd": 0}
                               for k, (i, c, b) in enumerate(ground_truth)]}
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        results = coco.loadRes([{"image_id": i, "category_id": c, "bbox": xywh(b), "score": s}
                                for i, c, b, s in detections])
        ev = COCOeval(coco, results, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return max(0.0, float(ev.stats[0])), max(0.0, float(ev.stats[1]))


def detections_of(ids, logps, nouns, bins):
    """Generated ids -> ([(class, box, score)], malformed segments), by nn/location_tokens.cpp's rules;
    the score is the mean log-probability of the segment's location tokens."""
    if not decode(ids).strip(" \t\n\r"):
        return [], 0
    segments, current = [], []  # token indices; ';' is byte 59 and no location token's text holds one
    for k, token in enumerate(ids):
        if token == ord(";"):
            segments.append(current)
            current = []
        else:
            current.append(k)
    segments.append(current)
    found, malformed = [], 0
    for segment in segments:
        parsed = parse_segment(decode([ids[k] for k in segment]).strip(" \t\n\r"), nouns, bins)
        if isinstance(parsed, str):
            malformed += 1
            continue
        cls, b = parsed
        # Location tokens spelt out byte by byte would parse too; they have no token score, so such
        # an object falls back to the mean over its segment.
        scores = [logps[k] for k in segment if ids[k] >= FIRST_LOC][:4] or [logps[k] for k in segment]
        found.append((cls, tuple(bin_to_coordinate(v, bins) for v in b), sum(scores) / len(scores)))
    return found, malformed


def model_generator(model, scenes, autocast, batch=256):
    """run(scene_of, prefixes) -> (ids, log-probs) by the model; the image tower runs once per scene."""
    model.eval()
    if model.fusion == "none":  # blind: the same prompts, no image
        return lambda scene_of, prefixes: generate_all(model, None, scene_of, prefixes, autocast, batch)
    with torch.no_grad(), autocast():
        x_img = torch.cat([model.image_tokens(scenes.image_batch(np.arange(s, min(s + 500, scenes.size))))
                           for s in range(0, scenes.size, 500)]).float()
    return lambda scene_of, prefixes: generate_all(model, x_img, scene_of, prefixes, autocast, batch)


def evaluate(scenes, run, bins):
    """The spec's metrics; run(scene_of, prefixes) -> (generated ids, their log-probs) per prompt."""
    n, nouns = scenes.size, scenes.nouns
    captions, _ = run(list(range(n)), ["caption"] * n)
    bleu4, cider = caption_scores([decode(c) for c in captions], [scenes.captions(i) for i in range(n)])

    questions = [(i, q) for i in range(n) for q in scenes.questions(i)]
    answers, _ = run([i for i, _ in questions], ["answer " + q for _, (q, _, _) in questions])
    correct = {t: [0, 0] for t in QUESTION_TYPES}
    for got, (_, (_, want, kind)) in zip(answers, questions):
        tally = correct.setdefault(kind, [0, 0])
        tally[0] += normalize_answer(decode(got)) == normalize_answer(want)
        tally[1] += 1
    vqa = {f"vqa_accuracy_{t}": c / max(q, 1) for t, (c, q) in correct.items()}
    vqa["vqa_accuracy"] = sum(c for c, _ in correct.values()) / max(sum(q for _, q in correct.values()), 1)

    count_prompts = []  # (scene, class)
    for i in range(n):
        present = scenes.present(i)
        absent = [c for c in range(len(nouns)) if c not in present]
        count_prompts += [(i, c) for c in present] + ([(i, absent[i % len(absent)])] if absent else [])  # a clip may hold every class
    counts, _ = run([i for i, _ in count_prompts], ["count " + nouns[c] for _, c in count_prompts])
    count_hits = sum(decode(got) == str(sum(1 for oc, _ in scenes.objects(i) if oc == c))
                     for got, (i, c) in zip(counts, count_prompts))

    # A clip's detection asks frame (i mod F), scored as image i F + frame.
    F = scenes.frames
    frame_of = (lambda i: None) if F == 1 else (lambda i: i % F)
    detect_ids, detect_logps = run(list(range(n)), [detect_prompt([nouns[c] for c in scenes.present(i, frame_of(i))],
                                                                  frame_of(i)) for i in range(n)])
    ground_truth, detections, failures = [], [], 0
    for i in range(n):
        image = i * F + (frame_of(i) or 0)
        ground_truth += [(image, c, box) for c, box in scenes.objects(i, frame=frame_of(i))]
        found, malformed = detections_of(detect_ids[i], detect_logps[i], nouns, bins)
        detections += [(image, c, box, score) for c, box, score in found]
        failures += malformed
    ap, ap50 = coco_ap(ground_truth, detections, n * F, len(nouns))
    return {"caption_cider": cider, "caption_bleu4": bleu4, **vqa, "count_accuracy": count_hits / len(count_prompts),
            "detection_map50": ap50, "detection_map": ap, "detection_parse_failures": failures}


# ------------------------------------------------------------------------------------------------
# Training.

def make_optimizer(model, args):
    """AdamW; weight decay on >= 2-D weights except the embeddings; the image tower (when it trains)
    at --visual-lr-scale times the learning rate."""
    groups = {}
    for name, p in model.named_parameters():
        image = name.startswith("visual.")
        if image and model.frozen_image:
            p.requires_grad_(False)
            continue
        if not p.requires_grad:  # --freeze-lm
            continue
        embedding = any(name == e or name.endswith("." + e) for e in ("token_embedding.weight", "positional_embedding", "pos_embed"))
        decays = p.ndim >= 2 and not embedding
        groups.setdefault((decays, image), []).append(p)
    return torch.optim.AdamW([{"params": ps, "weight_decay": args.weight_decay if decays else 0.0,
                               "lr_scale": args.visual_lr_scale if image else 1.0}
                              for (decays, image), ps in groups.items()],
                             lr=args.lr, betas=tuple(args.betas), eps=args.eps)


def lr_at(step, args):  # step counts from 0
    if step < args.warmup:
        return args.lr * (step + 1) / args.warmup
    t = (step - args.warmup) / max(1, args.steps - args.warmup)
    return args.lr * 0.5 * (1 + math.cos(math.pi * t))


def autocast_for(args):
    if getattr(args, "bf16", False):
        return lambda: torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext


def stem_of(args):
    """--stem, or the --init checkpoint's (a conv stem's weights are visual.patch_embed.proj.0.weight, ...)."""
    if args.stem or not args.init:
        return args.stem or "patch"
    with h5py.File(args.init, "r") as f:
        return "conv" if "visual.patch_embed.proj.0.weight" in f["params"] else "patch"


def frames_checked(scenes, args):
    if scenes.frames != args.frames:
        raise SystemExit(f"--frames {args.frames}, but {args.data} holds {scenes.frames} image(s) per sample")
    return scenes


def build_model(args):
    torch.manual_seed(args.seed)
    model = VLM(default_config(args.lm_width, args.lm_depth, args.lm_heads, args.text_context, args.loc_bins,
                               stem_of(args), args.fusion, args.cross_attention_every, args.content_grid, args.frames))
    model.frozen_image = args.freeze_image
    if args.freeze_lm:  # Tessera's model.lm.freeze: only what reads the image trains (train and bench)
        for name, p in model.named_parameters():
            if name.startswith(LM_PARTS):
                p.requires_grad_(False)
    return model


def init_from(model, path):
    with h5py.File(path, "r") as f:
        params = {n: f["params"][n][()] for n in f["params"]}
    if "lm_head.weight" in params:
        load_params(model, params)
        return "vlm checkpoint: every parameter"
    load_params(model, params, only_prefix="visual.")
    return "image tower (params/visual.*)"


LM_PARTS = ("token_embedding.", "positional_embedding", "blocks.", "ln_final.", "lm_head.")


def init_lm_from(model, path):
    """The language model (Tessera's model.lm.from): every LM parameter of another vlm checkpoint."""
    with h5py.File(path, "r") as f:
        params = {n: f["params"][n][()] for n in f["params"] if n.startswith(LM_PARTS)}
    load_params(model, params, only_prefix=LM_PARTS)
    return f"language model from {path}"


def train_step(model, opt, batch, step, args, autocast):
    images, ids, prefix_lengths, targets = batch
    for g in opt.param_groups:
        g["lr"] = lr_at(step, args) * g["lr_scale"]
    with autocast():
        loss = lm_loss(model(images, ids, prefix_lengths), targets)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    if args.clip > 0:
        torch.nn.utils.clip_grad_norm_([p for g in opt.param_groups for p in g["params"]], args.clip)
    opt.step()
    return loss.item()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024


def run_train(args):
    rng = np.random.default_rng(args.seed)
    model = build_model(args)
    initialised = init_from(model, args.init) if args.init else "random"
    if args.init_lm:
        initialised += "; " + init_lm_from(model, args.init_lm)
    print(f"init: {initialised}", file=sys.stderr)
    opt = make_optimizer(model, args)
    train = frames_checked(Scenes(os.path.join(args.data, "train.h5")), args)
    batcher = Batcher(model.in_sequence, model.text_context, model.loc_bins)
    loader = Loader(train, args.batch, parse_task_weights(args.task_weights), batcher, rng)
    autocast = autocast_for(args)
    model.train()
    start, loss, data_seconds = time.perf_counter(), float("nan"), 0.0
    for step in range(args.steps):
        data_start = time.perf_counter()
        batch = loader.next()  # on this thread: its time is inside steps_per_s, and reported apart
        data_seconds += time.perf_counter() - data_start
        loss = train_step(model, opt, batch, step, args, autocast)
        if (step + 1) % 20 == 0 or step + 1 == args.steps:
            elapsed = time.perf_counter() - start
            rate = (step + 1) / elapsed
            print(f"step {step + 1}/{args.steps} loss {loss:.4f} {rate:.3f} it/s ETA {(args.steps - step - 1) / rate:.0f} s",
                  file=sys.stderr, flush=True)
    train_seconds = time.perf_counter() - start
    if args.save:
        tmp = args.save + ".tmp"
        with h5py.File(tmp, "w") as f:
            for name, p in model.named_parameters():
                f.create_dataset(f"params/{name}", data=p.detach().float().numpy())
            f.attrs["config"] = json.dumps(model.config)
        os.replace(tmp, args.save)
    eval_start = time.perf_counter()
    test = frames_checked(Scenes(os.path.join(args.data, "test.h5"), args.eval_scenes), args)
    metrics = evaluate(test, model_generator(model, test, autocast, args.eval_batch), model.loc_bins)
    out = {"steps": args.steps, "batch": args.batch, "steps_per_s": round(args.steps / train_seconds, 4),
           "data_seconds": round(data_seconds, 1),
           "final_loss": round(loss, 4) if args.steps else None, "peak_rss_mb": peak_rss_mb(),
           **{k: (round(v, 4) if isinstance(v, float) else v) for k, v in metrics.items()},
           "eval_scenes": args.eval_scenes, "eval_seconds": round(time.perf_counter() - eval_start, 1),
           "truncated_samples": batcher.truncated, "freeze_image": args.freeze_image, "bf16": args.bf16,
           "init": initialised, "torch": torch.__version__, "threads": args.threads}
    print(json.dumps(out))


def run_bench(args):
    """Training steps/s and peak RSS: random init, one real batch of the mixture reused."""
    rng = np.random.default_rng(args.seed)
    model = build_model(args)
    opt = make_optimizer(model, args)
    scenes = frames_checked(Scenes(os.path.join(args.data, "train.h5"), limit=max(args.batch, 1000)), args)
    batcher = Batcher(model.in_sequence, model.text_context, model.loc_bins)
    batch = Loader(scenes, args.batch, parse_task_weights(args.task_weights), batcher, rng).next()
    autocast = autocast_for(args)
    model.train()
    for step in range(2):  # untimed: allocator and thread-pool warm-up
        train_step(model, opt, batch, step, args, autocast)
    start = time.perf_counter()
    for step in range(args.steps):
        train_step(model, opt, batch, step, args, autocast)
    elapsed = time.perf_counter() - start
    print(json.dumps({"mode": "bench", "steps": args.steps, "batch": args.batch, "text_length": batch[1].shape[1],
                      "steps_per_s": round(args.steps / elapsed, 4), "peak_rss_mb": peak_rss_mb(),
                      "freeze_image": args.freeze_image, "bf16": args.bf16, "torch": torch.__version__,
                      "threads": args.threads}))


# ------------------------------------------------------------------------------------------------
# The forward/backward agreement check against a dump, and its self-test.

def relative_error(a, b):
    return float((a - b).abs().max()) / (float(b.abs().max()) + 1e-8) if b.numel() else 0.0


def run_check(dump, tol):
    """Returns 0 when every tensor agrees within tol (relative to the dump's largest magnitude), else 1."""
    torch.use_deterministic_algorithms(True)
    with h5py.File(dump, "r") as f:
        config = json.loads(f.attrs["config"])
        params = {n: f["params"][n][()] for n in f["params"]}
        batch = {n: torch.as_tensor(f["batch"][n][()]) for n in ("images", "ids", "prefix_lengths", "targets")}
        want_logits = torch.as_tensor(f["out/logits"][()])
        want_loss = float(f["out/loss"][()])
        want_grads = {n: torch.as_tensor(f["grads"][n][()]) for n in f["grads"]} if "grads" in f else {}
    model = VLM(config_from_params(params, config)).float()
    load_params(model, params)
    logits = model(batch["images"].float(), batch["ids"].long(), batch["prefix_lengths"].long())
    loss = lm_loss(logits, batch["targets"].long())
    loss.backward()
    rows = [("out/logits", float((logits.detach() - want_logits).abs().max()), relative_error(logits.detach(), want_logits)),
            ("out/loss", abs(loss.item() - want_loss), abs(loss.item() - want_loss) / (abs(want_loss) + 1e-8))]
    problems = []
    for name, p in model.named_parameters():
        if name not in want_grads:
            problems.append(f"grads/{name} is missing from the dump")
            continue
        if tuple(want_grads[name].shape) != tuple(p.shape):
            problems.append(f"grads/{name} has shape {tuple(want_grads[name].shape)}, expected {tuple(p.shape)}")
            continue
        g = p.grad if p.grad is not None else torch.zeros_like(p)
        rows.append((f"grads/{name}", float((g - want_grads[name]).abs().max()), relative_error(g, want_grads[name])))
    problems += [f"grads/{n} names no parameter of the model" for n in want_grads if n not in dict(model.named_parameters())]
    print(f"check {dump}: B={batch['ids'].shape[0]} T={batch['ids'].shape[1]} loss torch {loss.item():.8g} dump {want_loss:.8g}")
    for name, abs_err, rel_err in rows[:2] + sorted(rows[2:], key=lambda r: -r[2])[:5]:
        print(f"  {name:<45} max abs {abs_err:.3e}  rel {rel_err:.3e}{'  FAIL' if rel_err > tol else ''}")
    failed = [r[0] for r in rows if not r[2] <= tol]  # `not <=` also catches NaN
    for p in problems:
        print(f"  {p}")
    verdict = "OK" if not failed and not problems else "FAIL " + ", ".join(failed[:5] + problems[:1])
    print(f"{len(rows)} tensors compared, tol {tol:g}: {verdict}")
    return 1 if failed or problems else 0


def write_dump(path, model, images, pairs, batcher):
    """Torch's own forward/backward (image tower trained) in the dump format of the spec."""
    ids, prefix_lengths, targets = batcher(pairs)
    model.zero_grad(set_to_none=True)
    logits = model(images, ids, prefix_lengths)
    loss = lm_loss(logits, targets)
    loss.backward()
    f32 = lambda t: t.detach().float().numpy()
    with h5py.File(path, "w") as f:
        f.attrs["config"] = json.dumps(model.config)
        for name, p in model.named_parameters():
            f[f"params/{name}"], f[f"grads/{name}"] = f32(p), f32(p.grad)
        f["batch/images"], f["batch/ids"] = f32(images), ids.numpy()
        f["batch/prefix_lengths"], f["batch/targets"] = prefix_lengths.numpy(), targets.numpy()
        f["out/logits"], f["out/loss"] = f32(logits), np.float64(loss.item())


def oracle(scenes, bins, corrupt=False):
    """A stand-in for the model that answers every evaluation prompt with the true text (corrupt:
    every third answer or count wrong, every third detection a malformed segment and a wrong box)."""
    def answer(i, prefix, k):
        spoil = corrupt and k % 3 == 0
        if prefix == "caption":
            return scenes.captions(i)[0]
        if prefix.startswith("answer "):
            truth = next(a for q, a, _ in scenes.questions(i) if q == prefix[len("answer "):])
            return "zebra" if spoil else truth
        if prefix.startswith("count "):
            c = scenes.nouns.index(prefix[len("count "):])
            return str(sum(1 for oc, _ in scenes.objects(i) if oc == c) + (1 if spoil else 0))
        frame = int(prefix.split(":")[0].rsplit(" ", 1)[1]) - 1 if prefix.startswith("detect in frame ") else None
        text = scenes.detection_suffix(i, scenes.present(i, frame), False, bins, frame)
        return "<loc0001><loc0002><loc0003><loc0004> bag ; <loc0001> bag" if spoil else text

    def run(scene_of, prefixes):
        ids = [encode(answer(i, p, k), bins) for k, (i, p) in enumerate(zip(scene_of, prefixes))]
        return ids, [[-0.1] * len(x) for x in ids]
    return run


def run_selftest(args):
    """check passes on torch's own dump and fails on a perturbed one; the prefix-LM mask is the
    spec's; KV-cache decoding gives the full forward's logits; location tokens round-trip."""
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    failures = []

    def expect(ok, what):
        print(f"  {'ok  ' if ok else 'FAIL'} {what}")
        if not ok:
            failures.append(what)

    # Vocabulary and words.
    text = "<loc0003><loc0063><loc0064>x <locabcd> é"
    expect(encode(text, 64)[:2] == [FIRST_LOC + 3, FIRST_LOC + 63] and encode(text, 64)[2] == ord("<"),
           "encode: <locNNNN> below loc_bins is one id, <loc0064> with 64 bins is bytes")
    expect(decode(encode(text, 64)) == text and decode([BOS, 97, SEP, PAD, EOS]) == "a", "decode inverts encode, drops specials")
    expect(mirror_text("left-of the Left, leftover right.") == "right-of the Left, leftover left.", "mirror_text")
    expect(normalize_answer("The Left-of bag.") == "left of bag", "normalize_answer")
    expect(parse_segment("<loc0001><loc0002><loc0003><loc0004> bag", ["bag"], 64) == (0, [1, 2, 3, 4]) and
           parse_segment("<loc0003><loc0002><loc0001><loc0004> bag", ["bag"], 64) == "inverted_box" and
           parse_segment("<loc0001><loc0002><loc0003> bag", ["bag"], 64) == "too_few_locations",
           "parse_segment: a good segment, an inverted box, too few locations")
    expect([coordinate_to_bin(v, 64) for v in (-3.0, 0.0, 63.99, 64.0, 80.0)] == [0, 0, 63, 63, 63], "bins clamp")

    # A small model (fast), but every layer kind and more than one head.
    cfg = default_config(lm_width=48, lm_depth=2, lm_heads=3, text_context=48, loc_bins=16)
    cfg["image"].update(width=24, depth=2, heads=2, mlp_hidden=48)
    model = VLM(cfg)
    with torch.no_grad():  # a non-zero projector and a visible image, so every gradient path is exercised
        model.projector.weight.normal_(0, 0.02)
        model.projector.bias.normal_(0, 0.02)
    batcher = Batcher(model.in_sequence, model.text_context, model.loc_bins)
    pairs = [("caption", "a bag right of a large shirt."), ("count bag", "2"),
             ("detect bag ; shirt", "<loc0001><loc0002><loc0009><loc0011> bag ; <loc0003><loc0000><loc0015><loc0004> shirt"),
             ("answer what is left of the sandal?", "nothing at all, really " * 3)]
    images = torch.randn(len(pairs), 1, 64, 64)
    ids, prefix_lengths, targets = batcher(pairs)
    expect(batcher.truncated == 1 and ids.shape[1] == model.text_context and int(ids[3, -1]) == EOS,
           "a suffix too long for text_context is cut so that EOS still fits")
    N = model.num_patches
    expect(all(int(targets[b, t]) == IGNORE or (N + t + 1 >= int(prefix_lengths[b]) and int(ids[b, t + 1]) != PAD)
               for b in range(len(pairs)) for t in range(ids.shape[1])) and (targets[:, -1] == IGNORE).all()
           and int(targets[1, 3 + len("count bag") - 2]) == ord("2"),
           "targets: suffix and EOS only, last position ignored")

    # The mask: changing a suffix token changes nothing before it, changing a prefix token changes
    # positions before it (bidirectional prefix).
    with torch.no_grad():
        base = model(images, ids, prefix_lengths)
        later = ids.clone()
        later[0, 12] = ord("Z")
        changed = model(images, later, prefix_lengths)
        expect(torch.equal(base[0, :12], changed[0, :12]) and not torch.equal(base[0, 12:], changed[0, 12:]),
               "causal after the prefix: a suffix token does not reach earlier positions")
        earlier = ids.clone()
        earlier[0, 3] = ord("Z")  # inside "caption"
        changed = model(images, earlier, prefix_lengths)
        expect(not torch.allclose(base[0, :3], changed[0, :3]), "bidirectional prefix: a later prefix token reaches earlier ones")

    # KV cache: the greedy continuation's log-probs equal those of a full forward over the result.
    model.eval()
    with torch.no_grad():
        x_img = model.image_tokens(images)
        prefixes = ["caption", "count bag", "detect shirt"]
        gen, logps = generate(model, x_img[:3], prefixes, contextlib.nullcontext)
        worst = 0.0
        for b, p in enumerate(prefixes):
            prompt = [BOS] + encode(p, model.loc_bins) + [SEP]
            full = torch.tensor([prompt + gen[b]])
            lp = model(images[b: b + 1], full, torch.tensor([N + len(prompt)]))[0].log_softmax(-1)
            for k, token in enumerate(gen[b]):
                worst = max(worst, abs(float(lp[len(prompt) - 1 + k, token]) - logps[b][k]))
        expect(all(len(g) > 0 for g in gen) and worst < 1e-4,
               f"KV-cache greedy decoding matches the full forward (worst log-prob gap {worst:.2e}, lengths {[len(g) for g in gen]})")
    model.train()

    # The other fusions decode as they score too (cross-attention layers read the image at every step;
    # dual tokens are made from the prompt at the start; the blind LM has no image).
    for fusion, extra in (("cross_attention", {"cross_attention_every": 1}), ("dual_token", {"content_grid": 2}),
                          ("none", {})):
        other = VLM(dict(cfg, fusion=fusion, **extra)).eval()
        with torch.no_grad():
            for name, t in other.named_parameters():
                if "gate" in name or "projector" in name:
                    t.normal_(0, 0.5)  # open gates, non-zero projections: the image must reach the text
            x_img = other.image_tokens(images) if fusion != "none" else None
            n = other.in_sequence
            prefixes = ["caption", "count bag"]
            gen, logps = generate(other, None if x_img is None else x_img[:2], prefixes, contextlib.nullcontext)
            worst = 0.0
            for b, p in enumerate(prefixes):
                prompt = [BOS] + encode(p, other.loc_bins) + [SEP]
                lp = other(images[b: b + 1], torch.tensor([prompt + gen[b]]), torch.tensor([n + len(prompt)]))[0]
                lp = lp.log_softmax(-1)
                for k, token in enumerate(gen[b]):
                    worst = max(worst, abs(float(lp[len(prompt) - 1 + k, token]) - logps[b][k]))
        expect(all(len(g) > 0 for g in gen) and worst < 1e-4,
               f"{fusion}: greedy decoding matches the full forward (worst log-prob gap {worst:.2e})")

    # check: passes on an honest dump, fails on a perturbed gradient, a perturbed logit.
    path = args.dump or "/tmp/vlm_selftest_dump.h5"
    write_dump(path, model, images, pairs, batcher)
    expect(run_check(path, args.tol) == 0, "check passes on torch's own dump")
    write_dump(path, model.double(), images.double(), pairs, batcher)  # another rounding, like another implementation
    model.float()
    expect(run_check(path, args.tol) == 0, "check passes on a dump computed in float64")
    with h5py.File(path, "r+") as f:
        g = f["grads/blocks.1.attn.qkv.weight"]
        a = g[()]
        a[5, 7] += 1e-3 * np.abs(a).max() + 1e-6  # 10x the tolerance, one element of one tensor
        g[...] = a
    expect(run_check(path, args.tol) == 1, "check fails when one gradient element is off by 1e-3 (relative)")
    write_dump(path, model, images, pairs, batcher)
    with h5py.File(path, "r+") as f:
        a = f["grads/visual.patch_embed.proj.weight"][()]
        a[0, 0, 0, 0] += 1e-3 * np.abs(a).max()
        f["grads/visual.patch_embed.proj.weight"][...] = a
    expect(run_check(path, args.tol) == 1, "check fails on an image-tower gradient (the tower is not frozen in the dump)")
    write_dump(path, model, images, pairs, batcher)
    with h5py.File(path, "r+") as f:
        del f["grads/projector.bias"]
    expect(run_check(path, args.tol) == 1, "check fails when a gradient is missing")
    write_dump(path, model, images, pairs, batcher)
    with h5py.File(path, "r+") as f:
        a = f["out/logits"][()]
        a[1, 2, 3] += 1e-3 * np.abs(a).max()
        f["out/logits"][...] = a
    expect(run_check(path, args.tol) == 1, "check fails on one logit")
    # The evaluation protocol, fed the true texts instead of a model's: every exact-match metric must
    # be 1, detection AP@0.5 1 (boxes only lose their sub-bin detail), nothing malformed.
    test_file = os.path.join(args.data, "test.h5")
    if os.path.exists(test_file):
        scenes = Scenes(test_file, 50)
        metrics = evaluate(scenes, oracle(scenes, 64), 64)
        print("  oracle metrics: " + json.dumps({k: round(v, 4) for k, v in metrics.items()}))
        exact = [k for k in metrics if k.startswith("vqa_accuracy") or k == "count_accuracy"]
        expect(all(metrics[k] == 1 for k in exact) and metrics["detection_map50"] == 1 and
               0.5 < metrics["detection_map"] < 1 and metrics["detection_parse_failures"] == 0 and
               metrics["caption_cider"] > 1 and metrics["caption_bleu4"] > 0.5,
               "evaluation of the true texts: exact matches 1, AP@0.5 1, no parse failures, high CIDEr/BLEU")
        wrong = evaluate(scenes, oracle(scenes, 64, corrupt=True), 64)
        expect(wrong["vqa_accuracy"] < 1 and wrong["count_accuracy"] < 1 and wrong["detection_map50"] < 1 and
               wrong["detection_parse_failures"] > 0, "evaluation of corrupted texts scores lower")
    else:
        expect(False, f"evaluation protocol: {test_file} not found (pass --data)")
    print(f"selftest: {'FAIL: ' + '; '.join(failures) if failures else 'all passed'}")
    return 1 if failures else 0


# ------------------------------------------------------------------------------------------------

def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["check", "train", "bench", "selftest"])
    p.add_argument("dump", nargs="?", help="check: the dump file; selftest: where to write its dump")
    p.add_argument("--tol", type=float, default=1e-4)
    p.add_argument("--data", default="datasets/scenes", help="folder with train.h5 and test.h5 of the scenes "
                   "(selftest: test.h5 for the evaluation protocol)")
    p.add_argument("--init", help="a Tessera checkpoint: siglip (params/visual.*) or vlm (everything)")
    p.add_argument("--save", help="write params/<name> to this HDF5 file after training")
    p.add_argument("--steps", type=int, default=None, help="train: optimizer steps; bench: timed steps (default 20)")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--weight-decay", type=float, default=0.01)
    p.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.98])
    p.add_argument("--eps", type=float, default=1e-6, help="AdamW epsilon (Tessera recipes' 1e-6)")
    p.add_argument("--clip", type=float, default=1.0, help="gradient norm clipping (0 = off)")
    p.add_argument("--freeze-image", action=argparse.BooleanOptionalAction, default=True)
    p.add_argument("--visual-lr-scale", type=float, default=0.1)
    p.add_argument("--task-weights", default="caption=1,detect=2,answer=2,count=1")
    p.add_argument("--stem", choices=["patch", "conv"], help="the image tower's stem (default: --init's, else patch)")
    p.add_argument("--fusion", choices=["prefix", "cross_attention", "dual_token", "none"], default="prefix",
                   help="how the LM reads the image, as Tessera's model.fusion")
    p.add_argument("--cross-attention-every", type=int, default=1)
    p.add_argument("--content-grid", type=int, default=1, help="--fusion dual_token: content tokens per side")
    p.add_argument("--frames", type=int, default=1, help="images per sample (model.frames); --data must hold clips "
                                                         "of as many frames (tessera data import scenes --frames F)")
    p.add_argument("--init-lm", help="a Tessera vlm checkpoint whose language model starts this one (model.lm.from)")
    p.add_argument("--freeze-lm", action="store_true", help="the language model gets no gradient (model.lm.freeze)")
    p.add_argument("--lm-width", type=int, default=192)
    p.add_argument("--lm-depth", type=int, default=4)
    p.add_argument("--lm-heads", type=int, default=3)
    p.add_argument("--text-context", type=int, default=160)
    p.add_argument("--loc-bins", type=int, default=64)
    p.add_argument("--eval-scenes", type=int, default=1000)
    p.add_argument("--eval-batch", type=int, default=256, help="prompts decoded together")
    p.add_argument("--beam", type=int, default=1)
    p.add_argument("--bf16", action="store_true", help="torch.autocast(cpu, bfloat16)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "check":
        if not args.dump:
            p.error("check needs the dump file")
        sys.exit(run_check(args.dump, args.tol))
    if args.mode == "selftest":
        sys.exit(run_selftest(args))
    if args.beam != 1:
        p.error("--beam: only greedy decoding (--beam 1) is implemented")
    if args.mode == "train":
        args.steps = 1000 if args.steps is None else args.steps
        run_train(args)
    else:
        args.steps = 20 if args.steps is None else args.steps
        run_bench(args)


if __name__ == "__main__":
    main()
