#!/usr/bin/python3
"""Where a CLIP/SigLIP checkpoint puts the test images relative to the class prompts (docs/RESULTS.md,
"Why SigLIP gains more"). Embeds the ten classes' prompts in the recipes' six templates with
`tessera embed`, averages each class's unit text embeddings (the zero-shot prompt ensemble), embeds
the test images with `tessera tokenize`, and prints: zero-shot accuracy; the mean cosine of an image
to its own class's prompt and to the closest other class, and their margin; how alike the text
embeddings of one class (across templates) and of different classes are; and per-class figures.

  env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/zero_shot_geometry.py runs/siglip_fmnist/last.h5
"""
import argparse
import json
import os
import subprocess
import tempfile

import h5py
import numpy as np

from clip_torch import CLASSES, TEMPLATES  # the recipes' class names and prompt templates


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoint")
    p.add_argument("--test", default="datasets/fmnist/test.h5")
    p.add_argument("--tessera", default="build/tessera")
    p.add_argument("--threads", default="2")
    args = p.parse_args()

    embed = [args.tessera, "embed", args.checkpoint, "--threads", args.threads]
    for name in CLASSES:
        for template in TEMPLATES:
            embed += ["--text", template.format(name)]
    lines = subprocess.run(embed, capture_output=True, text=True, check=True).stdout.strip().split("\n")
    text = np.array([json.loads(line)["embedding"] for line in lines]).reshape(len(CLASSES), len(TEMPLATES), -1)
    prototypes = text.mean(1)
    prototypes /= np.linalg.norm(prototypes, axis=1, keepdims=True)

    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "embeddings.h5")
        subprocess.run([args.tessera, "tokenize", args.checkpoint, args.test, out, "--threads", args.threads],
                       capture_output=True, check=True)
        with h5py.File(out, "r") as f:
            images = np.array(f[next(iter(f.keys()))])
    with h5py.File(args.test, "r") as f:
        labels = np.array(f["labels"])

    cos = images @ prototypes.T
    rows = np.arange(len(labels))
    own = cos[rows, labels]
    others = cos.copy()
    others[rows, labels] = -np.inf
    closest_other = others.max(1)
    correct = cos.argmax(1) == labels
    print(f"zero-shot accuracy {correct.mean():.4f}")
    print(f"cosine to own class {own.mean():.3f}, to the closest other class {closest_other.mean():.3f}, "
          f"margin {(own - closest_other).mean():.3f}")
    flat = text.reshape(len(CLASSES) * len(TEMPLATES), -1)
    pairs = (flat @ flat.T).reshape(len(CLASSES), len(TEMPLATES), len(CLASSES), len(TEMPLATES))
    same = np.mean([pairs[c, :, c, :][~np.eye(len(TEMPLATES), dtype=bool)].mean() for c in range(len(CLASSES))])
    different = np.mean([pairs[c, :, k, :].mean() for c in range(len(CLASSES)) for k in range(len(CLASSES)) if k != c])
    print(f"text cosine: same class, other template {same:.3f}; different classes {different:.3f}")
    for c, name in enumerate(CLASSES):
        print(f"  {name:<10}  accuracy {correct[labels == c].mean():.2f}  cosine to own class {own[labels == c].mean():.2f}")


if __name__ == "__main__":
    main()
