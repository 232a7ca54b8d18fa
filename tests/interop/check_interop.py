"""Loads `tessera export` output into timm and open_clip as a PyTorch user would — one line each,
strict — and checks their outputs against Tessera's own on the same images and texts.

Run by tests/train/test_interop.cpp with the test-only venv setup.sh makes (timm, open_clip_torch
and safetensors from PyPI over Debian's python3-torch); never part of Tessera's run path.

  check_interop.py timm DIR IMAGES.h5 LOGITS.h5 TESSERA_CKPT
      DIR from `tessera export CKPT DIR/model.safetensors --names timm`; LOGITS.h5 from
      `tessera predict CKPT IMAGES.h5 --out LOGITS.h5`.
  check_interop.py open_clip DIR IMAGES.h5 IMAGE_EMB.h5 TEXT_EMB.h5 TESSERA_CKPT
      DIR from `--names open_clip`; IMAGE_EMB.h5 from `tessera tokenize`, TEXT_EMB.h5 from
      `tessera embed --out` (its texts are read from the file).
  check_interop.py tessera FILE.safetensors TESSERA_CKPT
      every tensor of the checkpoint's params/ (parameters in FILE, buffers in
      FILE.buffers.safetensors), under its own name, bitwise.
Prints one line per check and exits 1 on the first that fails.
"""
import sys

import h5py
import numpy as np
import torch

TOLERANCE = 1e-5
PAD, BOS, EOS = 256, 257, 258


def report(what, ok, detail):
    print(f"{'ok' if ok else 'FAIL'}: {what}: {detail}")
    if not ok:
        sys.exit(1)


def images_of(path, mean, std, channels):
    with h5py.File(path, "r") as f:
        x = torch.from_numpy(f["images"][:]).permute(0, 3, 1, 2).float() / 255  # [N, C, H, W]
    if channels != x.shape[1]:  # open_clip reads RGB: a gray image as three equal channels
        x = x.expand(-1, channels, -1, -1)
    mean = torch.tensor(mean).view(1, -1, 1, 1)
    std = torch.tensor(std).view(1, -1, 1, 1)
    return (x - mean) / std


def tessera_params(checkpoint):
    with h5py.File(checkpoint, "r") as f:
        return {n: f["params"][n][()] for n in f["params"]}


def check_timm(folder, images, logits_file, checkpoint):
    import timm
    model = timm.create_model(f"local-dir:{folder}", pretrained=True)  # the one line; strict loading
    model.eval()
    cfg = model.pretrained_cfg
    x = images_of(images, cfg["mean"], cfg["std"], cfg["input_size"][0])
    with torch.no_grad():
        ours = model(x).numpy()
    with h5py.File(logits_file, "r") as f:
        theirs = f["logits"][:]
    diff = float(np.abs(ours - theirs).max())
    report("timm logits", diff <= TOLERANCE and ours.shape == theirs.shape,
           f"{ours.shape} max |timm - tessera| = {diff:.2e} (tolerance {TOLERANCE})")
    # The same weights load strictly by hand, too: names and shapes are timm's.
    from safetensors.torch import load_file
    model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=True)
    report("timm strict load", True, f"{len(model.state_dict())} tensors")


def tokens(texts, context):
    ids = torch.full((len(texts), context), PAD, dtype=torch.long)
    for i, t in enumerate(texts):
        row = [BOS] + list(t.encode("utf-8"))[: context - 2] + [EOS]
        ids[i, : len(row)] = torch.tensor(row)
    return ids


def check_open_clip(folder, images, image_emb, text_emb, checkpoint):
    import open_clip
    model, _, preprocess = open_clip.create_model_and_transforms(f"local-dir:{folder}")  # the one line
    model.eval()
    normalize = [t for t in preprocess.transforms if type(t).__name__ == "Normalize"][0]
    x = images_of(images, normalize.mean, normalize.std, 3)
    with h5py.File(text_emb, "r") as f:
        texts = [t.decode() if isinstance(t, bytes) else str(t) for t in f["texts"][:]]
        theirs_text = f["embeddings"][:]
    with h5py.File(image_emb, "r") as f:
        theirs_image = f["embeddings"][:]
    with torch.no_grad():
        ours_image = model.encode_image(x, normalize=True).numpy()
        ours_text = model.encode_text(tokens(texts, model.context_length), normalize=True).numpy()
    d_image = float(np.abs(ours_image - theirs_image).max())
    d_text = float(np.abs(ours_text - theirs_text).max())
    report("open_clip image embeddings", d_image <= TOLERANCE and ours_image.shape == theirs_image.shape,
           f"{ours_image.shape} max |open_clip - tessera| = {d_image:.2e}")
    report("open_clip text embeddings", d_text <= TOLERANCE and ours_text.shape == theirs_text.shape,
           f"{ours_text.shape} max |open_clip - tessera| = {d_text:.2e}")
    from safetensors.torch import load_file
    model.load_state_dict(load_file(f"{folder}/model.safetensors"), strict=True)
    report("open_clip strict load", True, f"{len(model.state_dict())} tensors")
    params = tessera_params(checkpoint)
    scale = float(model.logit_scale)
    report("open_clip logit_scale", abs(scale - float(params["logit_scale"][0])) == 0, f"{scale}")
    if "logit_bias" in params:
        bias = float(model.logit_bias)
        report("open_clip logit_bias", abs(bias - float(params["logit_bias"][0])) == 0, f"{bias}")


def check_tessera(file, checkpoint):
    import os
    from safetensors.numpy import load_file
    exported = load_file(file)
    buffers_file = file[: -len(".safetensors")] + ".buffers.safetensors"
    buffers = load_file(buffers_file) if os.path.exists(buffers_file) else {}
    params = tessera_params(checkpoint)
    both = {**exported, **buffers}
    report("tessera names", set(both) == set(params) and not set(exported) & set(buffers),
           f"{len(exported)} parameters + {len(buffers)} buffers; the checkpoint holds {len(params)}")
    same = all(np.array_equal(both[n], params[n]) for n in params)
    report("tessera values", same, "bitwise equal to the checkpoint's params/")


def main():
    kind = sys.argv[1]
    if kind == "timm":
        check_timm(*sys.argv[2:6])
    elif kind == "open_clip":
        check_open_clip(*sys.argv[2:7])
    elif kind == "tessera":
        check_tessera(*sys.argv[2:4])
    else:
        sys.exit(f"unknown check {kind}")


if __name__ == "__main__":
    main()
