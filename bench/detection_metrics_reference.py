#!/usr/bin/env python3
"""Expected values for tests/nn/test_detection_metrics.cpp from pycocotools' COCOeval.

Builds the same pseudo-random detection sets as the test (splitmix64, spelled out identically in
both), evaluates them with pycocotools, and prints the entries of the test's table `sets` in agrees_with_pycocotools.

  python3 -m venv /work/venv-metrics && /work/venv-metrics/bin/pip install pycocotools numpy
  /work/venv-metrics/bin/python bench/detection_metrics_reference.py

Boxes are (y_min, x_min, y_max, x_max) half-open pixels; pycocotools wants [x, y, w, h]. Every
coordinate is a multiple of 1/4 below 128, so the conversion and pycocotools' x + w are exact and
IoUs that land exactly on a threshold (frequent with whole pixels) are judged on equal numbers.
"""
import contextlib
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

MASK = (1 << 64) - 1


class SplitMix64:
    def __init__(self, seed):
        self.state = seed & MASK

    def next(self):
        self.state = (self.state + 0x9E3779B97F4A7C15) & MASK
        z = self.state
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK
        return z ^ (z >> 31)

    def below(self, n):  # uniform enough for a test set: modulo bias is irrelevant here
        return self.next() % n


def make_set(seed, images, classes, quarter_pixels, score_levels):
    """Ground truth and detections: (image, class, (y0, x0, y1, x1)[, score]).

    quarter_pixels: coordinates on a 1/4-pixel grid (else whole pixels). score_levels: scores are
    k / score_levels for k in 0..score_levels (few levels -> many ties)."""
    rng = SplitMix64(seed)
    unit = 4 if quarter_pixels else 1

    def coord(n):
        return rng.below(n * unit) / unit

    def random_box():
        y0, x0 = coord(48), coord(48)
        return (y0, x0, y0 + 6 + coord(18), x0 + 6 + coord(18))

    def jittered(box):
        j = [coord(3) - 1 for _ in range(4)]
        y0, x0 = box[0] + j[0], box[1] + j[1]
        return (y0, x0, max(y0 + 0.25, box[2] + j[2]), max(x0 + 0.25, box[3] + j[3]))

    def score():
        return rng.below(score_levels + 1) / score_levels

    gts, dets = [], []
    for image in range(images):
        for c in range(classes - 1):  # the last class never has ground truth
            for _ in range(rng.below(3)):
                box = random_box()
                gts.append((image, c, box))
                for _ in range(rng.below(3)):  # 0, 1 or 2 (a duplicate) detections near it
                    dets.append((image, c, jittered(box), score()))
        for _ in range(rng.below(3)):  # false positives, any class
            dets.append((image, rng.below(classes), random_box(), score()))
    return gts, dets


# (name, seed, images, classes, quarter_pixels, score_levels): the C++ test spells the same list.
SETS = [
    ("whole_pixels_tied_scores", 17, 30, 4, False, 4),
    ("quarter_pixels_fine_scores", 23, 40, 5, True, 1000),
    ("whole_pixels_all_scores_one", 31, 25, 3, False, 1),
]


def xywh(box):
    y0, x0, y1, x1 = box
    return [x0, y0, x1 - x0, y1 - y0]


def evaluate(gts, dets, images, classes):
    dataset = {
        "images": [{"id": i} for i in range(images)],
        "categories": [{"id": c} for c in range(classes)],
        # COCO's ids start at 1: an id of 0 would read as "unmatched" in COCOeval.
        "annotations": [
            {"id": k + 1, "image_id": i, "category_id": c, "bbox": xywh(b), "area": xywh(b)[2] * xywh(b)[3], "iscrowd": 0}
            for k, (i, c, b) in enumerate(gts)
        ],
    }
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = dataset
        coco.createIndex()
        results = coco.loadRes([{"image_id": i, "category_id": c, "bbox": xywh(b), "score": s} for i, c, b, s in dets])
        ev = COCOeval(coco, results, "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    precision = ev.eval["precision"][:, :, :, 0, 2]  # [T, R, K] at area "all", maxDets 100
    per_class = []
    for k in range(classes):
        p = precision[:, :, k]
        per_class.append(None if (p == -1).all() else p.mean(axis=1).tolist())
    return ev.stats[0], ev.stats[1], per_class


def main():
    for name, seed, images, classes, quarter, levels in SETS:
        gts, dets = make_set(seed, images, classes, quarter, levels)
        m, m50, per_class = evaluate(gts, dets, images, classes)
        quarter_cpp = "true" if quarter else "false"
        print(f'      {{"{name}", {seed}, {images}, {classes}, {quarter_cpp}, {levels}, {len(gts)}, {len(dets)},')
        print(f"       {{{float(m)!r}, {float(m50)!r},")
        print("        {")
        for ap in per_class:
            print("            {" + ", ".join(repr(v) for v in ap) + "}," if ap else "            {},  // no ground truth")
        print("        }}},")

if __name__ == "__main__":
    main()
