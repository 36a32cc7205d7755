#!/usr/bin/env python3
"""The Cortex-M4 size and cost table of docs/EMBEDDED.md.

For each trained model (a `pybnn train` checkpoint) this script
  1. exports it as a .bnn file and computes, with the host runtime (libbnn's
     bnn_model_run, the reference kernels forced), its accuracy on the
     MNIST test images and its classes for the first --images of them;
  2. builds examples/firmware for it with the bare-metal toolchain
     (cmake/toolchain-arm-none-eabi.cmake), first to learn the arena and
     workspace the model needs, then with exactly those static buffers;
  3. runs the firmware on qemu-system-arm (MPS2 AN386, -icount shift=0)
     and reads what it prints: the classes (which must be the host's),
     instructions per image, static RAM and the stack's high-water mark;
     flash is text + data of the linked ELF (arm-none-eabi-size);
and writes the Markdown table.  The first model is also built with each
popcount (--popcounts) to compare them.  --example NAME also writes the
model and test data the CTest firmware test uses
(examples/firmware/data/mnist_mlp256.*) from that model.

    python bench/embedded_table.py --mnist DIR --model mlp256=runs/best.npz ... \\
        [--out docs/embedded-table.md] [--example mlp256]
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time

import numpy as np

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLE_DIR = os.path.join(ROOT, "examples", "firmware", "data")


def export(checkpoint_path, out_path):
    """Write the checkpoint's .bnn file; its bytes."""
    from pybnn import checkpoint
    from pybnn.deploy import model_bytes
    model, state = checkpoint.load(checkpoint_path)
    data = model_bytes(model, tuple(int(d) for d in state["input_shape"]))
    with open(out_path, "wb") as f:
        f.write(data)
    return data


def host_classes(bnn_path, x):
    """Classes of the host runtime with the reference kernels (the table
    the firmware runs)."""
    import pybnn
    before = pybnn.isa()
    pybnn.set_isa("ref")
    try:
        return pybnn.load(bnn_path).predict(x)[1]
    finally:
        pybnn.set_isa(before)


def run(cmd, **kw):
    p = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, **kw)
    if p.returncode != 0:
        raise RuntimeError("%s failed (%d):\n%s" % (" ".join(cmd), p.returncode, p.stdout[-3000:]))
    return p.stdout


TOOLCHAINS = {"m4": "toolchain-arm-none-eabi.cmake", "rv32": "toolchain-riscv32-none-elf.cmake"}


class Firmware:
    """One build directory of examples/firmware for one board and popcount."""

    def __init__(self, work, popcount, board="m4"):
        self.dir = os.path.join(work, "build-%s-%s" % (board, popcount))
        self.popcount = popcount
        self.toolchain = TOOLCHAINS[board]
        self.configured = False

    def build(self, model, expected, arena, workspace, ram_kb=256):
        args = ["-DBNN_FW_RAM_KB=%d" % ram_kb, "-DBNN_FW_SELFTEST=OFF",
                "-DBNN_FW_MODEL=" + model, "-DBNN_FW_EXPECTED=" + expected,
                "-DBNN_FW_ARENA_BYTES=%d" % arena, "-DBNN_FW_WORKSPACE_BYTES=%d" % workspace,
                "-DBNN_POPCOUNT=" + self.popcount]
        if not self.configured:
            run(["cmake", "-S", ROOT, "-B", self.dir, "-DCMAKE_TOOLCHAIN_FILE="
                 + os.path.join(ROOT, "cmake", self.toolchain)] + args)
            self.configured = True
        else:
            run(["cmake", self.dir] + args)
        out = run(["cmake", "--build", self.dir, "-j2"])
        m = re.search(r"^\s*(\d+)\s+(\d+)\s+(\d+)\s+\d+\s+[0-9a-f]+\s+\S*bnn_firmware\.elf",
                      out, re.M)
        if m is None:
            raise RuntimeError("no size output in the build log:\n" + out[-2000:])
        text, data, bss = (int(g) for g in m.groups())
        return dict(flash=text + data, static_ram=data + bss)

    def run(self):
        t = time.time()
        out = run(["ctest", "--test-dir", self.dir, "-R", "firmware_", "-V",
                   "--output-on-failure"])
        lines = [ln.split(": ", 1)[1] for ln in out.splitlines() if re.match(r"^\d+: ", ln)]
        text = "\n".join(lines)
        get = lambda pat: re.search(pat, text)  # noqa: E731
        res = dict(seconds=time.time() - t, log=text)
        res["classes"] = [int(c) for c in get(r"classes:((?: \d+)*)").group(1).split()]
        m = get(r"memory: arena (\d+) of \d+ bytes, workspace (\d+) of")
        res["arena"], res["workspace"] = int(m.group(1)), int(m.group(2))
        m = get(r"instructions per image: median (\d+), mean (\d+), min (\d+), max (\d+)")
        res["insn_median"], res["insn_mean"] = int(m.group(1)), int(m.group(2))
        m = get(r"stack high-water (\d+) of")
        res["stack"] = int(m.group(1))
        res["ok"] = "OK: all" in text
        return res


def measure(fw, bnn_path, expected):
    """Two builds: the needs (with the board's whole 4 MB of RAM), then
    exactly those buffers (8-byte multiples) in the part's 256 KB."""
    fw.build(bnn_path, expected, 1 << 20, 1 << 20, ram_kb=4096)
    first = fw.run()
    arena = (first["arena"] + 7) // 8 * 8
    workspace = (first["workspace"] + 63) // 64 * 64
    sizes = fw.build(bnn_path, expected, arena, workspace)
    res = fw.run()
    res.update(sizes)
    if not res["ok"]:
        raise RuntimeError("the firmware's classes differ from the host's:\n" + res["log"])
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--mnist", required=True, help="the MNIST directory (10,000 test images)")
    ap.add_argument("--model", action="append", required=True, metavar="NAME=CHECKPOINT")
    ap.add_argument("--images", type=int, default=100,
                    help="test images in the firmware's flash (default 100)")
    ap.add_argument("--popcounts", default="swar32,builtin,table8",
                    help="the first is the one every model is built with (the toolchain's default)")
    ap.add_argument("--out", default=None, help="write the Markdown table here")
    ap.add_argument("--example", default=None, metavar="NAME",
                    help="also write this model and its images as the CTest example data")
    args = ap.parse_args(argv)
    from pybnn.data import load_mnist
    _, _, x_test, y_test = load_mnist(args.mnist)
    x_fw = x_test[:args.images]
    popcounts = args.popcounts.split(",")
    work = tempfile.mkdtemp(prefix="bnn-m4-")
    rows, pop_rows = [], []
    try:
        builds = {p: Firmware(work, p) for p in popcounts}
        rv32 = Firmware(work, "swar32", "rv32")
        for i, spec in enumerate(args.model):
            name, ckpt = spec.split("=", 1)
            bnn_path = os.path.join(work, name + ".bnn")
            data = export(ckpt, bnn_path)
            acc = float(np.mean(host_classes(bnn_path, x_test) == y_test))
            expected = os.path.join(work, name + "_expected.npz")
            np.savez(expected, x=x_fw, classes=host_classes(bnn_path, x_fw).astype(np.int64))
            if args.example == name:
                os.makedirs(EXAMPLE_DIR, exist_ok=True)
                shutil.copy(bnn_path, os.path.join(EXAMPLE_DIR, "mnist_mlp256.bnn"))
                np.savez_compressed(os.path.join(EXAMPLE_DIR, "mnist_mlp256_expected.npz"),
                                    x=x_fw, classes=host_classes(bnn_path, x_fw).astype(np.int64))
            for p in (popcounts if i == 0 else popcounts[:1]):
                r = measure(builds[p], bnn_path, expected)
                r.update(name=name, popcount=p, model_bytes=len(data), accuracy=acc)
                print("%-8s %-8s flash %7d  RAM %6d + stack %5d  %9d instructions/image  "
                      "accuracy %.2f%%  (qemu %.1f s)" % (name, p, r["flash"], r["static_ram"],
                                                          r["stack"], r["insn_median"],
                                                          100 * acc, r["seconds"]), flush=True)
                (pop_rows if i == 0 else rows).append(r)
                if i == 0 and p == popcounts[0]:
                    rows.append(r)
            rv = measure(rv32, bnn_path, expected)
            rows[-1]["rv32_insn"] = rv["insn_median"]
            rows[-1]["rv32_flash"] = rv["flash"]
            print("%-8s RV32IMC  flash %7d  RAM %6d + stack %5d  %9d instructions/image"
                  % (name, rv["flash"], rv["static_ram"], rv["stack"], rv["insn_median"]),
                  flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    table = ["| model | .bnn bytes | flash | static RAM | stack | RAM in all | instructions "
             "per image, Cortex-M4 | instructions per image, RV32IMC | accuracy (10,000 test "
             "images) |", "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        table.append("| %s | %d | %d | %d | %d | %d | %d | %d | %.2f%% |" % (
            r["name"], r["model_bytes"], r["flash"], r["static_ram"], r["stack"],
            r["static_ram"] + r["stack"], r["insn_median"], r["rv32_insn"],
            100 * r["accuracy"]))
    table += ["", "| popcount (%s) | flash | instructions per image |" % pop_rows[0]["name"],
              "|---|---|---|"]
    for r in pop_rows:
        table.append("| %s | %d | %d |" % (r["popcount"], r["flash"], r["insn_median"]))
    text = "\n".join(table) + "\n"
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
