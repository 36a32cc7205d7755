"""Builds pybnn._core: pybnn/_core.pyx plus every libbnn C source, in one
extension module (one kernel dispatch table per process)."""
import glob
import os
import sys

from setuptools import Extension, setup

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

setup(ext_modules=cythonize([ext], language_level=3))
