#!/usr/bin/env bash
# Regenerates the seed corpora in tests/fuzz/corpus/ (committed, so the fuzzers start from valid
# files of every kind): small files written by the `tessera` binary itself, plus images and
# HDF5 variants written by PIL and h5py as other programs would. Needs build/tessera and
# /usr/bin/python3 with PIL, numpy and h5py (Debian's python3-pil, python3-numpy, python3-h5py).
#   bash tests/fuzz/make_seeds.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
tessera=$PWD/build/tessera
corpus=$PWD/tests/fuzz/corpus
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
rm -rf "$corpus"
mkdir -p "$corpus"/{recipe,dataset,checkpoint,tokens,image,idx,safetensors}

/usr/bin/python3 - "$work" "$corpus" <<'PY'
import gzip, io, os, sys
import numpy as np, h5py
from PIL import Image
work, corpus = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(0)

# Images: PNG (gray, gray+alpha, RGB, RGBA, palette, 16-bit, interlaced) and JPEG (gray, RGB, progressive).
os.makedirs(f"{work}/src/a", exist_ok=True); os.makedirs(f"{work}/src/b", exist_ok=True)
rgb = rng.integers(0, 255, (6, 5, 3), dtype=np.uint8)
Image.fromarray(rgb[..., 0]).save(f"{corpus}/image/gray.png")
Image.fromarray(rgb[..., 0]).convert("LA").save(f"{corpus}/image/gray_alpha.png")
Image.fromarray(rgb).save(f"{corpus}/image/rgb.png")
Image.fromarray(rgb).convert("RGBA").save(f"{corpus}/image/rgba.png")
Image.fromarray(rgb).convert("P").save(f"{corpus}/image/palette.png")
Image.fromarray((rgb[..., 0].astype(np.uint16) * 257)).save(f"{corpus}/image/gray16.png")
Image.fromarray(rgb).save(f"{corpus}/image/interlaced.png", interlace=1)
Image.fromarray(rgb[..., 0]).save(f"{corpus}/image/gray.jpg", quality=90)
Image.fromarray(rgb).save(f"{corpus}/image/rgb.jpg", quality=90)
Image.fromarray(rgb).save(f"{corpus}/image/progressive.jpg", quality=90, progressive=True)
# An image folder to import (two classes, captions).
for c in "ab":
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)).save(f"{work}/src/{c}/{i}.png")
with open(f"{work}/captions.tsv", "w") as f:
    f.write("a/0.png\ta red thing\na/1.png\tan \u00e9clair\nb/0.png\tblue\nb/1.png\t\"quoted\"\n")

# idx: images and labels, gzip'd and plain.
def idx(dims, values):
    head = bytes([0, 0, 8, len(dims)]) + b"".join(int(d).to_bytes(4, "big") for d in dims)
    return head + bytes(values)
images = idx([3, 2, 2], range(12)); labels = idx([3], [0, 1, 2])
open(f"{corpus}/idx/images.idx", "wb").write(images)
open(f"{corpus}/idx/labels.idx", "wb").write(labels)
open(f"{corpus}/idx/images.idx.gz", "wb").write(gzip.compress(images, mtime=0))
open(f"{corpus}/idx/labels.idx.gz", "wb").write(gzip.compress(labels, mtime=0))

# Data sets as h5py writes them (labels as uint8, no chunking, no class_names).
with h5py.File(f"{corpus}/dataset/h5py_plain.h5", "w") as f:
    f["images"] = rng.integers(0, 255, (4, 4, 4, 1), dtype=np.uint8)
    f["labels"] = np.array([0, 1, 0, 1], dtype=np.uint8)
with h5py.File(f"{corpus}/dataset/h5py_chunked.h5", "w") as f:
    f.create_dataset("images", data=rng.integers(0, 255, (4, 4, 4, 3), dtype=np.uint8), chunks=(2, 4, 4, 3),
                     compression="gzip")
    d = f.create_dataset("labels", data=np.array([0, 1, 2, 1], dtype=np.int64))
    d.attrs["class_names"] = ["x", "y", "z"]
# 8x8 squares for the tokenizers (as tests/train/test_hostile_inputs.cpp makes them).
sq = np.full((16, 8, 8, 1), 20, dtype=np.uint8)
for i in range(16):
    y0, x0 = (i % 4) // 2 * 4, (i % 2) * 4
    sq[i, y0:y0 + 3, x0:x0 + 3, 0] = 180 + i % 70
with h5py.File(f"{work}/squares.h5", "w") as f:
    f["images"] = sq
    d = f.create_dataset("labels", data=np.arange(16, dtype=np.int64) % 4)
    d.attrs["class_names"] = ["nw", "ne", "sw", "se"]
PY

cd "$work"
"$tessera" data import folder src --out "$corpus/dataset/folder_captions.h5" --size 4 --channels 3 --captions captions.tsv > /dev/null
"$tessera" data import folder src --out items_rgb.h5 --size 8 --channels 1 > /dev/null
mkdir -p items
cp "$corpus/dataset/h5py_chunked.h5" items/unused.h5
/usr/bin/python3 - <<'PY'
import numpy as np, h5py
rng = np.random.default_rng(1)
for split in ("train", "test"):
    with h5py.File(f"items/{split}.h5", "w") as f:
        f["images"] = rng.integers(0, 255, (8, 10, 10, 1), dtype=np.uint8)
        d = f.create_dataset("labels", data=np.arange(8, dtype=np.int64) % 2)
        d.attrs["class_names"] = ["p", "q"]
PY
"$tessera" data import scenes --from items --out scenes --size 16 --objects 1-2 --scale 5-8 --train 3 --test 0 > /dev/null
cp scenes/train.h5 "$corpus/dataset/scenes.h5"

# Checkpoints and token files of tiny models trained one step (the tokens harness's model sizes).
common='seed: 1\nthreads: 1\noptim: {type: adam, lr: 0.01}\ntrain: {steps: 1, batch_size: 4}\nlog: {every: 1}\n'
printf "data: {train: squares.h5, mean: [0.0], std: [1.0]}\nmodel: {type: vqvae, encoder: plain, code_dim: 8, codebook_size: 16}\nloss: {type: mse}\n$common" > vq.yaml
printf "data: {train: squares.h5, mean: [0.0], std: [1.0]}\nmodel: {type: vae, encoder: plain, latent_channels: 3}\nloss: {type: mse}\n$common" > vae.yaml
printf "data: {train: squares.h5}\nmodel: {type: mlp, hidden: [2]}\ntrain: {steps: 1, batch_size: 4, ema_decay: 0.9}\n$common" | grep -v '^train: {steps: 1, batch_size: 4}$' > mlp.yaml
for m in vq vae mlp; do "$tessera" train $m.yaml --run-dir $m > /dev/null; done
cp mlp/last.h5 "$corpus/checkpoint/mlp.h5"
"$tessera" tokenize vq/last.h5 squares.h5 "$corpus/tokens/vq_codes.h5" > /dev/null
"$tessera" tokenize vae/last.h5 squares.h5 "$corpus/tokens/vae_latents.h5" > /dev/null
"$tessera" export mlp/last.h5 "$corpus/safetensors/mlp.safetensors" > /dev/null
"$tessera" export vq/last.h5 vq.safetensors > /dev/null  # its parameters are large: only the buffers file
cp vq.buffers.safetensors "$corpus/safetensors/"
printf '{"a": [1, 2.5e-3, true, null, "\\u00e9\\ud83d\\ude00"], "b": {"c": {}}}' > "$corpus/safetensors/header.json"

# Recipes: the shipped ones are seeds too (tests/sanitize.sh adds recipes/); here, small ones
# with flow style, anchors and overrides-like text.
cp vq.yaml "$corpus/recipe/vq_flow.yaml"
cp mlp.yaml "$corpus/recipe/mlp_flow.yaml"
printf 'base: &b {type: adam, lr: 0.01}\ndata: {train: x.h5}\nmodel: {type: mlp}\noptim: *b\n' > "$corpus/recipe/anchor.yaml"
du -sh "$corpus"
