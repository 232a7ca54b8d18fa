"""How much an image tower knows about which Fashion-MNIST classes a scene holds (issue 17's count
accuracy) and where (its detection), measured with the tower of bench/vlm_torch.py (8x8 patches,
width 192, depth 6):

  presence   a linear probe (logistic regression per class) on the mean of the frozen tower's
             patch tokens of CKPT (a SigLIP or VLM checkpoint), trained on 1,500 training scenes,
             tested on 500: accuracy against the base rate of always answering "absent".
  count      the tower (from CKPT, or random with --scratch) trained end to end with an attention
             probe (one query per class) to predict each class's count (0..4), AdamW 1e-3, batch
             64, bf16 autocast; every 200 steps the exact-count accuracy on 1,000 test scenes, for
             present classes and for absent ones. --stem conv replaces the 8x8 patch embedding of a
             --scratch tower by three stride-2 3x3 convolutions (1 -> 32 -> 64 -> 192 channels, GELU
             between): the same 64 tokens, cut from features that have seen each pixel's
             neighbourhood (Xiao et al. 2021, "Early convolutions help transformers see better").

  patches    what detection needs: whether each frozen patch token says which class covers its
             patch. Every token of 2,000 training scenes is labelled with the class whose box holds
             the patch centre (the smallest such box), or background; a linear softmax probe is
             trained on the tokens of 1,500 scenes and tested on 500. The same probe on the tokens of
             a randomly initialised tower of the same shape, and on the patch's raw pixels, says how
             much the trained tower adds. Accuracy over object patches only (background is most of
             the image), against always naming the commonest class. With --scratch: a random tower
             (--stem) and a linear head trained end to end on those labels (fp32, batch 64), to see
             how fast the architecture can learn what the frozen tower was never asked. A checkpoint
             trained with model.patch_head also has its own heads (and centre head) scored on the
             whole test set; `heads` does only that.

  python bench/scenes_tower_probe.py presence runs/siglip_scenes/last.h5 --data datasets/scenes
  python bench/scenes_tower_probe.py patches runs/siglip_scenes_conv/last.h5
  python bench/scenes_tower_probe.py patches --scratch --stem conv --steps 300   # trained on the labels
  python bench/scenes_tower_probe.py heads runs/siglip_scenes/last.h5     # only the checkpoint's own heads
  python bench/scenes_tower_probe.py count --scratch --steps 3000 --data datasets/scenes
  python bench/scenes_tower_probe.py count --scratch --stem conv --steps 1000 --precision fp32
"""
import argparse
import os
import sys
import time

import h5py
import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import vlm_torch as V  # noqa: E402


def tower_from(path, seed=0, load=True):
    """The image tower of a checkpoint (patch or conv stem, as its parameters say); with load=False
    one of the same shape, randomly initialised; with no path a random patch-stem tower."""
    params = {}
    if path:
        with h5py.File(path, "r") as f:
            params = {n: f["params"][n][()] for n in f["params"]}
    stem = "conv" if params and "visual.patch_embed.proj.weight" not in params else "patch"
    torch.manual_seed(seed)
    model = V.VLM(V.default_config(stem=stem))
    if params and load:
        V.load_params(model, params, only_prefix="visual.")
    return model.visual


def conv_stem(width):
    """64x64 -> 8x8 tokens of `width` by three stride-2 3x3 convolutions, as the patch embedding's proj."""
    return torch.nn.Sequential(torch.nn.Conv2d(1, 32, 3, 2, 1), torch.nn.GELU(), torch.nn.Conv2d(32, 64, 3, 2, 1),
                               torch.nn.GELU(), torch.nn.Conv2d(64, width, 3, 2, 1))


def counts_of(scenes, indices):
    c = np.zeros((len(indices), 10), np.int64)
    for j, i in enumerate(indices):
        for k, _ in scenes.objects(int(i)):
            c[j, k] += 1
    return torch.as_tensor(c).clamp(max=4)


def presence(args):
    tower = tower_from(args.checkpoint).eval()
    scenes = V.Scenes(os.path.join(args.data, "train.h5"), 2000)
    with torch.no_grad():
        pooled = tower(scenes.image_batch(list(range(2000)))).mean(1)
    present = (counts_of(scenes, range(2000)) > 0).float()
    probe = torch.nn.Linear(pooled.shape[1], 10)
    opt = torch.optim.Adam(probe.parameters(), 1e-2)
    for _ in range(300):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(probe(pooled[:1500]), present[:1500])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        accuracy = ((probe(pooled[1500:]) > 0) == (present[1500:] > 0)).float().mean().item()
    print(f"presence probe: test accuracy {accuracy:.4f}, base rate (always absent) {1 - present[1500:].mean().item():.4f}")


def warmup_cosine(step, steps, peak=1e-3, warmup=100):
    """The end-to-end runs' learning rate: linear warm-up, then cosine to 0."""
    return peak * min(1, (step + 1) / warmup) * 0.5 * (1 + np.cos(np.pi * step / steps))


PATCH = 8  # the towers' 8 x 8 patches: an 8 x 8 grid of tokens on 64 x 64 scenes
BACKGROUND = 10


def patch_labels(scenes, indices):
    """[len(indices), 64]: the class whose box holds each patch's centre (the smallest box), else background."""
    grid = V.IMAGE_SIZE // PATCH
    centres = (np.arange(grid) + 0.5) * PATCH
    labels = np.full((len(indices), grid, grid), BACKGROUND, np.int64)
    for j, i in enumerate(indices):
        objects = sorted(scenes.objects(int(i)), key=lambda o: -(o[1][2] - o[1][0]) * (o[1][3] - o[1][1]))
        for k, (y0, x0, y1, x1) in objects:  # largest first, so smaller boxes overwrite
            rows = (centres >= y0) & (centres < y1)
            cols = (centres >= x0) & (centres < x1)
            labels[j][np.ix_(rows, cols)] = k
    return torch.as_tensor(labels.reshape(len(indices), -1))


def centre_labels(scenes, indices):
    """[len(indices), 64]: each object's class at the patch holding its box centre (the smallest box
    when two centres share a patch), else background: what model.patch_head.centre_weight teaches."""
    grid = V.IMAGE_SIZE // PATCH
    labels = np.full((len(indices), grid, grid), BACKGROUND, np.int64)
    cell = lambda centre: min(max(int(np.floor(centre / PATCH)), 0), grid - 1)  # noqa: E731
    for j, i in enumerate(indices):
        objects = sorted(scenes.objects(int(i)), key=lambda o: -(o[1][2] - o[1][0]) * (o[1][3] - o[1][1]))
        for k, (y0, x0, y1, x1) in objects:  # largest first, so smaller boxes overwrite
            labels[j, cell((y0 + y1) / 2), cell((x0 + x1) / 2)] = k
    return torch.as_tensor(labels.reshape(len(indices), -1))


def linear_probe(features, labels, train_rows, steps=400):
    """A softmax probe trained on features[:train_rows] (full batch, Adam); its test predictions."""
    features = (features - features[:train_rows].mean(0)) / (features[:train_rows].std(0) + 1e-6)
    probe = torch.nn.Linear(features.shape[1], BACKGROUND + 1)
    opt = torch.optim.Adam(probe.parameters(), 1e-2)
    for _ in range(steps):
        loss = torch.nn.functional.cross_entropy(probe(features[:train_rows]), labels[:train_rows])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        return probe(features[train_rows:]).argmax(-1)


def patches_trained(args):
    """The tower (--stem, random) and a linear head trained end to end on the patch labels."""
    tower = tower_from(None, args.seed)
    if args.stem == "conv":
        tower.patch_embed.proj = conv_stem(192)
    head = torch.nn.Linear(192, BACKGROUND + 1)
    train = V.Scenes(os.path.join(args.data, "train.h5"))
    test = V.Scenes(os.path.join(args.data, "test.h5"), 500)
    test_labels = patch_labels(test, range(500)).reshape(-1)
    params = list(tower.parameters()) + list(head.parameters())
    opt = torch.optim.AdamW(params, 1e-3, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, args.steps)
        idx = rng.integers(0, train.size, 64)
        loss = torch.nn.functional.cross_entropy(head(tower(train.image_batch(idx))).reshape(-1, BACKGROUND + 1),
                                                 patch_labels(train, idx).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 100 == 0 or step == args.steps - 1:
            with torch.no_grad():
                right = head(tower(test.image_batch(list(range(500))))).argmax(-1).reshape(-1) == test_labels
            on_object = test_labels != BACKGROUND
            print(f"step {step} loss {loss.item():.3f} test: object patches {right[on_object].float().mean():.3f}, "
                  f"background {right[~on_object].float().mean():.3f} ({time.time() - start:.0f} s)", flush=True)


def patches(args):
    if args.scratch:
        return patches_trained(args)
    scenes = V.Scenes(os.path.join(args.data, "train.h5"), 2000)
    indices = list(range(2000))
    labels = patch_labels(scenes, indices).reshape(-1)
    train_rows = 1500 * 64
    test = labels[train_rows:]
    on_object = test != BACKGROUND
    common = torch.bincount(labels[:train_rows][labels[:train_rows] != BACKGROUND]).argmax()
    print(f"{len(indices)} scenes, {int((labels != BACKGROUND).sum())} object patches of {labels.numel()}; "
          f"always the commonest class on object patches: {(test[on_object] == common).float().mean():.3f}")
    images = scenes.image_batch(indices)
    pixels = images.unfold(2, PATCH, PATCH).unfold(3, PATCH, PATCH)  # [B, C, 8, 8, p, p]
    pixels = pixels.permute(0, 2, 3, 1, 4, 5).reshape(-1, images.shape[1] * PATCH * PATCH)
    sources = [("raw patch pixels", pixels)]
    with torch.no_grad():
        for name, load in ((args.checkpoint, True), ("random tower, same shape", False)):
            tower = tower_from(args.checkpoint, args.seed, load).eval()
            sources.append((name, torch.cat([tower(images[i:i + 250]) for i in range(0, len(indices), 250)])
                            .reshape(-1, tower.norm.normalized_shape[0])))
    for name, features in sources:
        predicted = linear_probe(features, labels, train_rows)
        right = predicted == test
        print(f"{name}: object patches {right[on_object].float().mean():.3f}, "
              f"background {right[~on_object].float().mean():.3f}", flush=True)
    own_patch_head(args)


def own_patch_head(args):
    """A SigLIP checkpoint trained with model.patch_head: its own heads on its own tower, here in PyTorch,
    over the whole test set, which is what Tessera's eval reports as patch_class_accuracy and
    patch_background_accuracy, and with the centre head patch_centre_accuracy,
    patch_centre_background_accuracy and patch_centre_count_accuracy (the two should agree up to
    argmax ties of float rounding)."""
    with h5py.File(args.checkpoint, "r") as f:
        heads = {name: tuple(torch.as_tensor(f["params"][f"{name}.{p}"][()]) for p in ("weight", "bias"))
                 for name in ("patch_head", "patch_centre_head") if f"{name}.weight" in f["params"]}
    if not heads:
        return
    tower = tower_from(args.checkpoint).eval()
    test = V.Scenes(os.path.join(args.data, "test.h5"))
    with torch.no_grad():
        tokens = torch.cat([tower(test.image_batch(list(range(i, min(i + 250, test.size)))))
                            for i in range(0, test.size, 250)])
    for name, (weight, bias) in heads.items():
        centre = name == "patch_centre_head"
        labels = (centre_labels if centre else patch_labels)(test, range(test.size))
        predicted = (tokens @ weight.T + bias).argmax(-1)
        right = predicted == labels
        on_object = labels != BACKGROUND
        line = (f"its own {name}, all {test.size} test scenes: object patches {right[on_object].float().mean():.4f}, "
                f"background {right[~on_object].float().mean():.4f}")
        if centre:  # exact counts of the classes each scene holds, read off the predicted centres
            held = torch.nn.functional.one_hot(labels, BACKGROUND + 1)[..., :BACKGROUND].sum(1)
            said = torch.nn.functional.one_hot(predicted, BACKGROUND + 1)[..., :BACKGROUND].sum(1)
            line += f", exact counts of held classes {(said == held)[held > 0].float().mean():.4f}"
        print(line, flush=True)


class CountProbe(torch.nn.Module):
    """One learned query per class attends over the patch tokens; a linear layer reads 0..4."""

    def __init__(self, width):
        super().__init__()
        self.queries = torch.nn.Parameter(torch.randn(10, width) * 0.02)
        self.keys = torch.nn.Linear(width, width)
        self.out = torch.nn.Linear(width, 5)

    def forward(self, tokens):
        weights = torch.einsum("qd,bnd->bqn", self.queries, self.keys(tokens)).softmax(-1)
        return self.out(torch.einsum("bqn,bnd->bqd", weights, tokens))


def count(args):
    tower = tower_from(None if args.scratch else args.checkpoint, args.seed)  # seeds torch's generator
    if args.stem == "conv":
        tower.patch_embed.proj = conv_stem(192)
    probe = CountProbe(192)
    precision = torch.autocast("cpu", dtype=torch.bfloat16, enabled=args.precision == "bf16")
    train = V.Scenes(os.path.join(args.data, "train.h5"))
    test = V.Scenes(os.path.join(args.data, "test.h5"), 1000)
    params = list(tower.parameters()) + list(probe.parameters())
    opt = torch.optim.AdamW(params, 1e-3, weight_decay=0.01)
    rng = np.random.default_rng(args.seed)
    start = time.time()
    for step in range(args.steps):
        for g in opt.param_groups:
            g["lr"] = warmup_cosine(step, args.steps)
        idx = rng.integers(0, train.size, 64)
        x = train.image_batch(idx, flips=rng.random(64) < 0.5)
        with precision:
            out = probe(tower(x))
        loss = torch.nn.functional.cross_entropy(out.float().reshape(-1, 5), counts_of(train, idx).reshape(-1))
        opt.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        if step % 200 == 0 or step == args.steps - 1:
            with torch.no_grad(), precision:
                predicted = probe(tower(test.image_batch(list(range(1000))))).float().argmax(-1)
            truth = counts_of(test, range(1000))
            right, present = predicted == truth, truth > 0
            print(f"step {step} loss {loss.item():.3f} exact count: present classes {right[present].float().mean():.3f}, "
                  f"absent {right[~present].float().mean():.3f} ({time.time() - start:.0f} s)", flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=["presence", "count", "patches", "heads"])
    p.add_argument("checkpoint", nargs="?", help="a Tessera SigLIP or VLM checkpoint (params/visual.*)")
    p.add_argument("--scratch", action="store_true", help="count, patches: a randomly initialised tower, trained")
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--data", default="datasets/scenes")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seed", type=int, default=0, help="count: the initialisation and data order")
    p.add_argument("--stem", choices=["patch", "conv"], default="patch", help="count --scratch: the tower's stem")
    p.add_argument("--precision", choices=["bf16", "fp32"], default="bf16",
                   help="count: bf16 autocast (slow on a CPU without bf16 instructions) or fp32")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.mode == "presence" and not args.checkpoint:
        p.error("presence needs a checkpoint")
    if args.mode == "patches" and not args.scratch and not args.checkpoint:
        p.error("patches needs a checkpoint or --scratch")
    if args.mode == "heads" and not args.checkpoint:
        p.error("heads needs a SigLIP checkpoint trained with model.patch_head")
    if args.mode == "count" and not args.scratch and not args.checkpoint:
        p.error("count needs a checkpoint or --scratch")
    if args.stem == "conv" and not args.scratch:
        p.error("--stem conv is for --scratch (a checkpoint's tower has its own patch embedding)")
    {"presence": presence, "count": count, "patches": patches, "heads": own_patch_head}[args.mode](args)


if __name__ == "__main__":
    main()
