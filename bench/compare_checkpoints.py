#!/usr/bin/env python3
"""Are two Tessera checkpoints the same training state, bit for bit?

usage: compare_checkpoints.py A.h5 B.h5

Compares every tensor under params/, optim/ and ema/ (values and shapes, bitwise) and the step and
data position in meta; prints what differs and exits 1 if anything does. The recipes may differ
(a data-parallel run and its one-process equivalent name different train.accumulation).
"""
import sys

import h5py


def tensors(f):
    out = {}
    for group in ("params", "optim", "ema"):
        if group in f:
            f[group].visititems(lambda name, obj, g=group: out.__setitem__(f"{g}/{name}", obj[()])
                                if isinstance(obj, h5py.Dataset) else None)
    return out


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with h5py.File(sys.argv[1], "r") as fa, h5py.File(sys.argv[2], "r") as fb:
        a, b = tensors(fa), tensors(fb)
        differ = sorted(set(a) ^ set(b))
        for name in sorted(set(a) & set(b)):
            x, y = a[name], b[name]
            if x.shape != y.shape or x.tobytes() != y.tobytes():
                differ.append(name)
        meta = [k for k in ("step", "loader_epoch", "loader_position") if fa["meta"].attrs[k] != fb["meta"].attrs[k]]
        step = int(fa["meta"].attrs["step"])
    if differ or meta:
        print(f"{len(differ)} of {len(a)} tensors differ (first: {differ[:3]}); meta differs: {meta}")
        sys.exit(1)
    print(f"identical: {len(a)} tensors (parameters, optimizer state, EMA), step {step}")


if __name__ == "__main__":
    main()
