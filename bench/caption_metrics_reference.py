#!/usr/bin/env python3
"""Reference values for tests/nn/test_caption_metrics.cpp from the COCO caption evaluation itself.

pycocoevalcap's Bleu(4) and Cider scorers (the latter is CIDEr-D: clipped, length-penalised,
sigma 6) score a fixed small corpus of scene-like captions. COCO tokenises with the PTB tokenizer,
which needs Java; we tokenise as nn/caption_words does instead (ASCII lower-case, ASCII
punctuation -> space, split on whitespace) and hand the scorers space-joined words.

    python3 -m venv /work/venv-metrics && /work/venv-metrics/bin/pip install pycocoevalcap
    /work/venv-metrics/bin/python bench/caption_metrics_reference.py

prints C++ constants to paste into the test, with 17 significant digits.
"""
import string

from pycocoevalcap.bleu.bleu import Bleu
from pycocoevalcap.cider.cider import Cider

# (candidate, references): 1 to 5 references per item; a one-word candidate, a repetitive one,
# an unseen word, upper case and punctuation are all in here on purpose.
CORPUS = [
    ("two bags, a small sneaker below them.",
     ["two bags, a small sneaker below them.", "a small sneaker and two bags.", "a small sneaker below a bag."]),
    ("a large shirt and two bags.",
     ["a large shirt and two bags.", "two bags, a large shirt left of them.", "a large shirt right of a bag.",
      "two bags and a shirt."]),
    ("a dress.", ["a dress.", "a small dress."]),
    ("a coat above a sandal.", ["a sandal, a coat above it.", "a coat and a sandal.", "a coat above a sandal."]),
    ("bag", ["a bag.", "a large bag."]),
    ("a bag a bag a bag a bag.", ["two bags.", "a bag and a bag.", "a small bag left of a bag."]),
    ("three sneakers, a trouser right of them.",
     ["three sneakers, a trouser right of them.", "a trouser and three sneakers.",
      "a trouser right of a sneaker.", "three sneakers and a trouser.", "a small trouser and three sneakers."]),
    ("A Pullover Left Of An Ankle Boot.",
     ["an ankle boot, a pullover left of it.", "a pullover and an ankle boot."]),
    ("a zebra next to a shirt.", ["a shirt.", "a small shirt."]),
    ("two dresses and a bag.", ["two dresses, a bag below them.", "a bag and two dresses.", "a bag below a dress."]),
    ("a small sandal above a large coat.",
     ["a large coat, a small sandal above it.", "a small sandal and a large coat.",
      "a small sandal above a large coat.", "a coat and a sandal."]),
    ("four shirts.", ["four shirts.", "four shirts, all of them small."]),
    ("a t-shirt/top right of a sneaker.",
     ["a sneaker, a t-shirt/top right of it.", "a t-shirt/top and a sneaker.", "a t-shirt/top right of a sneaker."]),
    ("a large bag below a small bag and a sneaker on the left of them both.",
     ["two bags and a sneaker.", "a large bag below a small bag."]),
    ("two coats, a dress left of them.",
     ["two coats, a dress left of them.", "a dress and two coats.", "a dress left of a coat.",
      "two coats and a dress.", "a large dress, two coats right of it."]),
]


def words(text):
    assert text.isascii(), text
    for p in string.punctuation:
        text = text.replace(p, " ")
    return text.lower().split()


def score(corpus):
    res = {i: [" ".join(words(c))] for i, (c, _) in enumerate(corpus)}
    gts = {i: [" ".join(words(r)) for r in refs] for i, (_, refs) in enumerate(corpus)}
    bleu, _ = Bleu(4).compute_score(gts, res, verbose=0)
    cider, _ = Cider().compute_score(gts, res)
    return bleu[3], float(cider)


def short(caption):
    """The first three words: candidates shorter than their references (brevity penalty)."""
    return " ".join(caption.split()[:3])


if __name__ == "__main__":
    cases = {
        "corpus": CORPUS,
        "first_five": CORPUS[:5],
        "truncated": [(short(c), refs) for c, refs in CORPUS],
    }
    for name, corpus in cases.items():
        bleu, cider = score(corpus)
        print(f"constexpr double k_{name}_bleu4 = {bleu:.17g};")
        print(f"constexpr double k_{name}_cider_d = {cider:.17g};")
