#!/usr/bin/env python3
"""Tessera against PyTorch on the same recipes, fp32 and bf16, as one markdown table of ratios.

For each recipe, back to back on the same threads: `tessera bench` fp32, its PyTorch reference fp32,
`tessera bench --set train.precision=bf16`, the PyTorch reference under bf16 autocast; each a process of
its own, each reporting steps/s of its median timed step and its peak RSS. --repeat N alternates those
four N times and reports the median of each. Run it with a Python that has torch (the PyTorch references
run on the same interpreter), from anywhere; the recipes and their datasets are read from the checkout
this file is in:

  /work/venv-torch/bin/python bench/speed_table.py                      # every recipe, 50 steps after 5
  /work/venv-torch/bin/python bench/speed_table.py --recipes vae_fmnist --steps 20 --warmup 5 --repeat 3
  /work/venv-torch/bin/python bench/speed_table.py --precisions fp32      # fp32 only; --bf16-steps N shortens bf16

A Tessera build without train.precision (or a run that fails) shows "n/a" in its cells, with the reason
under the table. The PyTorch references get the recipes' settings where their defaults differ (REFERENCES).
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
PRECISIONS = ("fp32", "bf16")
KEYS = [(system, p) for p in PRECISIONS for system in ("tessera", "pytorch")]
NOT_RUN = object()  # a cell whose precision --precisions left out


@dataclass
class Reference:
    """How a recipe's PyTorch reference is benched: its script, the options that give it the recipe's model and
    settings, and the names of its timed-steps and warm-up options."""
    script: str
    args: list
    steps_option: str = "--steps"
    warmup_option: str = "--warmup"


CONTRASTIVE = ["--pooling", "avg", "--image-lr-scale", "4", "--warmup", "30"]  # --warmup: the learning rate's
REFERENCES = {
    "vit_fmnist": Reference("vit_torch.py", ["bench", "--pooling", "avg", "--drop-path", "0", "--label-smoothing", "0.1"]),
    "clip_fmnist": Reference("clip_torch.py", ["bench", "--loss", "clip", "--init-scale", "1.945910", *CONTRASTIVE],
                             "--bench-steps", "--bench-warmup"),
    "siglip_fmnist": Reference("clip_torch.py", ["bench", "--loss", "siglip", "--init-scale", "1.609438",
                                                 "--init-bias", "-5.5", *CONTRASTIVE], "--bench-steps", "--bench-warmup"),
    "vae_fmnist": Reference("autoencoder_torch.py", ["bench", "vae", "--beta1", "0.97", "--beta2", "0.99"]),
    "vqvae_fmnist": Reference("autoencoder_torch.py", ["bench", "vqvae"]),
}


def steps_for(args, precision):
    """Timed and warm-up steps of a run: --bf16-steps shortens the bf16 runs (PyTorch's autocast is slow on a CPU
    without bf16 instructions)."""
    if precision == "bf16" and args.bf16_steps is not None:
        return args.bf16_steps, min(args.warmup, args.bf16_steps)
    return args.steps, args.warmup


def tessera_command(args, recipe, precision):
    steps, warmup = steps_for(args, precision)
    command = [args.tessera, "bench", f"recipes/{recipe}.yaml", "--threads", str(args.threads),
               "--steps", str(steps), "--warmup", str(warmup), "--json"]
    return command + (["--set", "train.precision=bf16"] if precision == "bf16" else [])


def torch_command(args, recipe, precision):
    ref = REFERENCES[recipe]
    steps, warmup = steps_for(args, precision)
    return [args.python, str(BENCH / ref.script), *ref.args, "--threads", str(args.threads),
            ref.steps_option, str(steps), ref.warmup_option, str(warmup), "--precision", precision, "--json"]


def torch_environment():
    # PyTorch picks its own BLAS kernels: Tessera's OpenBLAS settings are not for it (docs/PERFORMANCE.md).
    return {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}


def run(command, env=None):
    """One bench process: its JSON result, or {"error": why} when it fails."""
    done = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True)
    json_lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode == 0 and json_lines:
        return json.loads(json_lines[-1])
    why = (done.stderr.strip() or done.stdout.strip() or "no output").splitlines()[-1]
    return {"error": f"exit {done.returncode}: {why}"}


def output_of(command):
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=True).stdout.strip()


def describe_machine(args):
    info = output_of([args.tessera, "info"]).splitlines()
    cpu = next((line.split(None, 1)[1] for line in info if line.split(None, 1)[0] == "cpu"), "unknown cpu")
    torch_version = output_of([args.python, "-c", "import torch; print(torch.__version__)"])
    commit = output_of(["git", "rev-parse", "--short", "HEAD"])
    if output_of(["git", "status", "--porcelain", "--untracked-files=no"]):
        commit += " + uncommitted changes"
    # Settings both sides inherit that move the figures (OMP_WAIT_POLICY above all, on a loaded machine)
    environment = {k: v for k, v in sorted(os.environ.items()) if k.startswith(("OMP_", "TESSERA_", "ONEDNN_", "DNNL_"))}
    return {"cpu": cpu, "torch": torch_version, "tessera_commit": commit, "threads": args.threads,
            "steps": args.steps, "bf16_steps": args.bf16_steps, "precisions": args.precisions, "warmup": args.warmup, "repeat": args.repeat, "environment": environment}


def median_of(runs, key):
    values = [r[key] for r in runs if "error" not in r]
    return statistics.median(values) if values else None


def bench_recipe(args, recipe, log):
    """Every run of one recipe, by system and precision: {("tessera", "fp32"): [result, ...], ...}."""
    runs = {(system, p): [] for p in args.precisions for system in ("tessera", "pytorch")}
    for r in range(args.repeat):
        for precision in args.precisions:
            for system, command, env in (("tessera", tessera_command(args, recipe, precision), None),
                                         ("pytorch", torch_command(args, recipe, precision), torch_environment())):
                result = run(command, env)
                runs[system, precision].append(result)
                shown = result.get("error") or f"{result['steps_per_s']:.3g} steps/s, {result['peak_rss_mb']:.0f} MB"
                print(f"[{r + 1}/{args.repeat}] {recipe} {system} {precision}: {shown}", file=log, flush=True)
    return runs


def steps_cell(value):
    return "n/a" if value is None else "not run" if value is NOT_RUN else f"{value:.3g}"


def ratio_cell(tessera, pytorch):
    if tessera is NOT_RUN or pytorch is NOT_RUN:
        return "not run"
    return "n/a" if tessera is None or pytorch is None else f"{tessera / pytorch:.2f}x"


def rss_cell(fp32, bf16):
    return " / ".join("n/a" if v is None else "not run" if v is NOT_RUN else f"{v:,.0f}" for v in (fp32, bf16)) + " MB"


def table(machine, medians, failures):
    bf16_steps = "" if machine.get("bf16_steps") is None else f" ({machine['bf16_steps']} for bf16)"
    lines = [f"CPU: {machine['cpu']}; PyTorch {machine['torch']}; Tessera {machine['tessera_commit']}; "
             f"{machine['threads']} threads; steps/s of the median of {machine['steps']} timed steps{bf16_steps} after "
             f"{machine['warmup']}, median of {machine['repeat']} alternated run(s); ratio = Tessera / PyTorch"
             + "".join(f"; {k}={v}" for k, v in machine["environment"].items()),
             "",
             "| recipe | Tessera fp32 steps/s | PyTorch fp32 | ratio | Tessera bf16 | PyTorch bf16 | ratio "
             "| Tessera peak RSS fp32/bf16 | PyTorch peak RSS fp32/bf16 |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for recipe, m in medians.items():
        speed = {key: m[key]["steps_per_s"] if key in m else NOT_RUN for key in KEYS}
        rss = {key: m[key]["peak_rss_mb"] if key in m else NOT_RUN for key in KEYS}
        lines.append(" | ".join([
            f"| `{recipe}`",
            steps_cell(speed["tessera", "fp32"]), steps_cell(speed["pytorch", "fp32"]),
            ratio_cell(speed["tessera", "fp32"], speed["pytorch", "fp32"]),
            steps_cell(speed["tessera", "bf16"]), steps_cell(speed["pytorch", "bf16"]),
            ratio_cell(speed["tessera", "bf16"], speed["pytorch", "bf16"]),
            rss_cell(rss["tessera", "fp32"], rss["tessera", "bf16"]),
            rss_cell(rss["pytorch", "fp32"], rss["pytorch", "bf16"])]) + " |")
    if failures:
        lines += ["", "n/a:"] + [f"- {f}" for f in failures]
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default=",".join(REFERENCES), help="comma-separated, from: " + ", ".join(REFERENCES))
    p.add_argument("--tessera", default=str(ROOT / "build" / "tessera"), help="the tessera binary")
    p.add_argument("--python", default=sys.executable, help="the Python (with torch) that runs the PyTorch references")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--steps", type=int, default=50, help="timed steps per run (tessera bench's default)")
    p.add_argument("--warmup", type=int, default=5, help="untimed steps first (tessera bench's default)")
    p.add_argument("--repeat", type=int, default=1, help="alternate the four runs of a recipe N times; medians")
    p.add_argument("--precisions", default=",".join(PRECISIONS), help="comma-separated, from: fp32, bf16")
    p.add_argument("--bf16-steps", type=int, help="timed steps of the bf16 runs (default --steps): PyTorch's autocast "
                   "takes seconds per step on a CPU without bf16 instructions")
    p.add_argument("--json", metavar="OUT", help="also write the machine, every run and the medians to OUT")
    args = p.parse_args()
    recipes = [r.strip() for r in args.recipes.split(",") if r.strip()]
    unknown = [r for r in recipes if r not in REFERENCES]
    if unknown:
        p.error(f"no PyTorch reference for {', '.join(unknown)} (known: {', '.join(REFERENCES)})")
    args.precisions = [x.strip() for x in args.precisions.split(",") if x.strip()]
    if not args.precisions or any(x not in PRECISIONS for x in args.precisions):
        p.error(f"--precisions: expected a comma-separated list of fp32 and bf16, got '{','.join(args.precisions)}'")
    if args.steps < 1 or args.warmup < 0 or args.repeat < 1 or args.threads < 1 or (args.bf16_steps or 1) < 1:
        p.error("--steps, --bf16-steps, --repeat and --threads must be at least 1, --warmup at least 0")
    args.tessera = str(Path(args.tessera).resolve())
    if not Path(args.tessera).is_file():
        p.error(f"no tessera binary at {args.tessera} (build it, or give --tessera)")

    try:
        machine = describe_machine(args)
    except subprocess.CalledProcessError as e:
        why = (e.stderr.strip() or f"exit {e.returncode}").splitlines()[-1]
        sys.exit(f"speed_table: `{' '.join(e.cmd)}` failed: {why} (torch missing? give --python)")
    all_runs, medians, failures = {}, {}, []
    for recipe in recipes:
        runs = bench_recipe(args, recipe, sys.stderr)
        all_runs[recipe] = runs
        medians[recipe] = {key: {"steps_per_s": median_of(rs, "steps_per_s"), "peak_rss_mb": median_of(rs, "peak_rss_mb")}
                           for key, rs in runs.items()}
        for (system, precision), rs in runs.items():
            errors = sorted({r["error"] for r in rs if "error" in r})
            failures += [f"{recipe} {system} {precision}: {e}" for e in errors]
    print(table(machine, medians, failures))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"machine": machine,
                       "runs": {recipe: {f"{s} {p}": rs for (s, p), rs in runs.items()} for recipe, runs in all_runs.items()},
                       "medians": {recipe: {f"{s} {p}": v for (s, p), v in m.items()} for recipe, m in medians.items()}},
                      f, indent=1)
    # A failed fp32 run is a broken benchmark; bf16 may be missing from a Tessera build and is only n/a.
    return 1 if any(" fp32: " in f for f in failures) else 0


if __name__ == "__main__":
    sys.exit(main())
