"""What the bench modes of the PyTorch references share (vit_torch.py, autoencoder_torch.py, clip_torch.py):
the --precision and --json options, bf16 autocast, and a report measured as `tessera bench` measures
(train/commands/bench.cpp): untimed warm-up steps, then each timed step on its own, steps/s from the
median step, peak RSS from getrusage.
"""
import contextlib
import json
import resource
import statistics

import torch


def add_options(parser):
    parser.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                        help="bf16: forward and loss under torch.autocast('cpu', dtype=torch.bfloat16), "
                             "backward outside it (as train.precision: bf16 in a recipe)")
    parser.add_argument("--json", action="store_true", help="bench: print one JSON line instead of text")


def autocast(precision):
    """The context a training step's forward and loss run in."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def report(name, args, step_seconds, warmup, batch, **extra):
    """Prints the bench result of the timed steps' durations (seconds), after `warmup` untimed steps, as text
    or (--json) as one JSON line."""
    median = statistics.median(step_seconds)  # the mean of the middle two for an even count, as tessera bench
    result = {"model": name, "mode": "bench", "precision": args.precision, "threads": args.threads, "batch": batch,
              "steps": len(step_seconds), "warmup": warmup, "torch": torch.__version__,
              "steps_per_s": 1 / median, "images_per_s": batch / median, "median_step_ms": median * 1e3,
              "peak_rss_mb": peak_rss_mb(), **extra}
    if args.json:
        print(json.dumps(result))
        return
    print(f"model         {name} ({args.threads} threads, batch {batch}, {args.precision}, torch {torch.__version__})")
    print(f"timed steps   {len(step_seconds)} after {warmup} warm-up")
    print(f"median step   {median * 1e3:.2f} ms\nsteps/s       {1 / median:.1f}\nimages/s      {batch / median:.0f}")
    for key, value in extra.items():
        print(f"{key:<13} {value:.4g}" if isinstance(value, float) else f"{key:<13} {value}")
    print(f"peak RSS      {peak_rss_mb():.0f} MB")
