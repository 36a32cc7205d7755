#!/usr/bin/env bash
# The GPU check, for whoever has a CUDA device: builds libbnn with CUDA,
# runs the device tests (GPU == CPU bit for bit, errors as statuses), then
# the Python half (a BNN_CUDA=1 build of pybnn, tests/python/test_cuda.py)
# and `pybnn bench cuda`.  About 5 minutes on one GPU; each part says
# what it ran or why it could not.
#     bash bench/gpu_check.sh            (BENCH_SIZE=2048 for a quicker benchmark)
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
JOBS=${JOBS:-$(nproc 2>/dev/null || echo 4)}
fail=0
say() { echo "=== $*"; }

say "device"
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>&1 || echo "(no nvidia-smi)"
command -v nvcc >/dev/null 2>&1 || for d in /usr/local/cuda/bin /usr/local/cuda-*/bin; do
    [ -x "$d/nvcc" ] && export PATH="$d:$PATH" && break; done
nvcc --version 2>&1 | tail -n 2 || { echo "no nvcc: cannot build the CUDA kernels"; exit 1; }

say "C: cmake -DBNN_CUDA=ON, the device tests"
B=$(mktemp -d)
if cmake -S "$ROOT" -B "$B" -DBNN_CUDA=ON -DBNN_BUILD_EXAMPLES=OFF -DCMAKE_BUILD_TYPE=Release >"$B/cmake.log" 2>&1 &&
   cmake --build "$B" -j "$JOBS" >>"$B/cmake.log" 2>&1; then
    "$B/tests/test_cuda_emu" | tail -n 1
    "$B/tests/test_cuda_device"; rc=$?
    [ $rc = 0 ] || { echo "test_cuda_device: exit $rc"; fail=1; }
else
    tail -n 30 "$B/cmake.log"; echo "C build FAILED"; fail=1
fi

say "Python: BNN_CUDA=1 build of pybnn, tests/python/test_cuda.py, pybnn bench cuda"
P=$(mktemp -d)
if BNN_CUDA=1 python3 -m pip install -q --no-deps --no-build-isolation --target "$P" "$ROOT" >"$P.log" 2>&1; then
    (cd "$P" && PYTHONPATH="$P" python3 -m pytest -q -p no:cacheprovider "$ROOT/tests/python/test_cuda.py") || fail=1
    (cd "$P" && PYTHONPATH="$P" python3 -m pybnn bench cuda) || fail=1
else
    tail -n 20 "$P.log"
    echo "Python build not possible here (it needs numpy, Cython and setuptools installed); the C part above stands"
fi
say "gpu check: $([ $fail = 0 ] && echo passed || echo FAILED)"
exit $fail
