#!/usr/bin/env python3
"""Are two `pybnn train` runs the same?  For changes that must not change
results (a refactor, a faster kernel with the same arithmetic):

    python bench/compare_runs.py RUN_A RUN_B

compares, in two --out folders of the same command:
- metrics.json, every field but the measurements of the machine (the
  timings, "seconds", the training memory, the threads and kernels); the
  history only where one was written before metrics.json held the
  configuration (a list of epochs);
- best.npz and last.npz, every array (the run state's JSON compared without
  its history timings, its configuration with every setting named:
  pybnn.checkpoint.run_config), bit for bit;
- any *.bnn / *.c / *.h files present in both (exports), byte for byte.
Prints one line per item and exits 1 if anything differs.
"""
from __future__ import annotations

import json
import os
import sys

import numpy as np

from pybnn.checkpoint import run_config

# what metrics.json measures of the machine rather than of the training
_MEASURED = ("seconds", "train_bytes_per_sample", "train_bytes_fixed", "threads", "kernels")


def _no_times(history):
    return [{k: v for k, v in row.items() if k not in _MEASURED} for row in history]


def _state(arr):
    state = json.loads(str(arr))
    state["history"] = _no_times(state.get("history", []))
    if "config" in state:
        state["config"] = run_config(state)
    return state


def _metrics(path):
    with open(path) as f:
        m = json.load(f)
    if isinstance(m, list):              # written before it held the configuration
        m = {"history": m}
    m = {k: v for k, v in m.items() if k not in _MEASURED}
    m["history"] = _no_times(m["history"])
    if "config" in m:
        m["config"] = run_config(m)
    return m


def compare(a, b, out=print):
    """List of the differences between run folders a and b (empty: same)."""
    diffs = []

    def report(name, same, detail=""):
        out("%-24s %s%s" % (name, "same" if same else "DIFFERENT", detail))
        if not same:
            diffs.append(name)

    ma, mb = (_metrics(os.path.join(d, "metrics.json")) for d in (a, b))
    if "config" in ma and "config" in mb:
        report("metrics.json", ma == mb)
    else:
        report("metrics.json", ma["history"] == mb["history"], " (history only: one is older)")
    for ck in ("best.npz", "last.npz"):
        pa, pb = os.path.join(a, ck), os.path.join(b, ck)
        if not (os.path.exists(pa) and os.path.exists(pb)):
            report(ck, False, " (missing)")
            continue
        with np.load(pa) as za, np.load(pb) as zb:
            ka, kb = set(za.files), set(zb.files)
            differ = sorted(k for k in ka & kb if k != "state"
                            and not np.array_equal(za[k], zb[k], equal_nan=za[k].dtype.kind == "f"))
            if "state" in ka & kb and _state(za["state"]) != _state(zb["state"]):
                differ.append("state")
            only = sorted(ka ^ kb)
            detail = ""
            if only:
                detail += " (in one only: %s)" % ", ".join(only)
            if differ:
                detail += " (differ: %s)" % ", ".join(differ)
            report(ck, not only and not differ, detail or " (%d arrays)" % len(ka))
    exports = sorted(f for f in set(os.listdir(a)) & set(os.listdir(b))
                     if f.endswith((".bnn", ".c", ".h")))
    for f in exports:
        with open(os.path.join(a, f), "rb") as fa, open(os.path.join(b, f), "rb") as fb:
            report(f, fa.read() == fb.read())
    return diffs


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    return 1 if compare(*argv) else 0


if __name__ == "__main__":
    sys.exit(main())
