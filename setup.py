"""Builds pybnn._core: pybnn/_core.pyx plus every libbnn C source, in one
extension module (one kernel dispatch table per process)."""
import glob
import os
import shutil
import subprocess
import sys

from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

try:
    from Cython.Build import cythonize
except ImportError:  # pragma: no cover - pyproject.toml requires Cython
    sys.exit("building pybnn needs Cython >= 3 (pip install cython)")

HERE = os.path.dirname(os.path.abspath(__file__))
os.chdir(HERE)

sources = ["pybnn/_core.pyx"] + sorted(glob.glob("libbnn/**/*.c", recursive=True))

compile_args = []
link_args = []
if os.name != "nt":
    # libbnn is always -O3 (the last -O wins over Python's own CFLAGS);
    # fused multiply-adds only where the code asks for them.
    compile_args = ["-O3", "-ffp-contract=off", "-fvisibility=hidden",
                    "-Wno-unused-function"]
    link_args = ["-pthread"]
    if os.environ.get("BNN_NATIVE") == "1":
        compile_args.append("-march=native")

ext = Extension(
    "pybnn._core",
    sources=sources,
    include_dirs=["include", "libbnn"],
    define_macros=[("BNN_BUILD", None)],
    extra_compile_args=compile_args,
    extra_link_args=link_args,
    libraries=["m"] if os.name != "nt" else [],
)


def _cuda_home():
    """The CUDA toolkit: $CUDA_HOME, $CUDA_PATH, the folder above nvcc's,
    or /usr/local/cuda -- the first that has include/cuda_runtime.h."""
    nvcc = shutil.which("nvcc")
    places = [os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"),
              os.path.dirname(os.path.dirname(os.path.realpath(nvcc))) if nvcc else None,
              "/usr/local/cuda"]
    for place in places:
        if place and os.path.exists(os.path.join(place, "include", "cuda_runtime.h")):
            return place
    sys.exit("BNN_CUDA=1: no CUDA toolkit found (set CUDA_HOME to the folder with "
             "include/cuda_runtime.h and bin/nvcc)")


class BuildExtCuda(build_ext):
    """BNN_CUDA=1: libbnn/cuda/cuda.cu compiled by nvcc for the targets of
    libbnn/cuda/architectures.txt and linked into _core with the CUDA
    runtime; cuda_none.c then compiles to nothing (BNN_WITH_CUDA)."""

    def build_extensions(self):
        home = _cuda_home()
        nvcc = shutil.which("nvcc") or os.path.join(home, "bin", "nvcc")
        with open(os.path.join("libbnn", "cuda", "architectures.txt")) as f:
            archs = f.read().strip().split(";")
        gencode = []
        for a in archs:
            num, kind = a.split("-")
            code = ("sm_" if kind == "real" else "compute_") + num
            gencode += ["-gencode", "arch=compute_%s,code=%s" % (num, code)]
        obj = os.path.join(self.build_temp, "bnn_cuda.o")
        os.makedirs(self.build_temp, exist_ok=True)
        cmd = [nvcc, "-c", os.path.join("libbnn", "cuda", "cuda.cu"), "-o", obj,
               "-std=c++17", "-O3", "--fmad=false", "-Xcompiler", "-fPIC",
               "-Xcompiler", "-fvisibility=hidden", "-Iinclude", "-Ilibbnn",
               "-DBNN_BUILD", "-DBNN_WITH_CUDA"] + gencode
        print(" ".join(cmd))
        subprocess.check_call(cmd)
        lib = next((d for d in (os.path.join(home, "lib64"), os.path.join(home, "lib"))
                    if os.path.isdir(d)), os.path.join(home, "lib64"))
        for e in self.extensions:
            e.extra_objects.append(obj)
            e.define_macros.append(("BNN_WITH_CUDA", None))
            e.include_dirs.append(os.path.join(home, "include"))
            e.library_dirs.append(lib)
            e.runtime_library_dirs.append(lib)
            e.libraries += ["cudart", "stdc++"]
        super().build_extensions()


cmdclass = {"build_ext": BuildExtCuda} if os.environ.get("BNN_CUDA") == "1" else {}
setup(ext_modules=cythonize([ext], language_level=3), cmdclass=cmdclass)
