#!/usr/bin/env bash
# GPU checks, one short run: the cuda-marked tests, then `mhub validate --device cpu --device cuda` of a
# generated checkpoint (torchvision resnet50, random weights) against torchvision fed the original file.
# Prints the figures (max abs error, cosine, top-5 agreement; CUDA with TF32 off and on), then the inference
# benchmark on CUDA (bfloat16; eager, fused, fused + channels-last against timm).
#
# Usage: bash scripts/gpu_check.sh          (PYTHON=/path/to/python to use another interpreter)
# Needs only a Python environment with mhub's dependencies (e.g. the .venv carried from a dev machine): the
# packages are imported from this checkout wherever it lies, whatever path the venv was installed from.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

# Import mhub's packages from this checkout (an editable install may point at another path).
mkdir -p "$WORK/path"
for pkg in core/mhub plugins/mhub_* tools/mhub_tools; do ln -s "$ROOT/$pkg" "$WORK/path/$(basename "$pkg")"; done
ln -s "$ROOT/registry" "$WORK/path/mhub_registry"
export PYTHONPATH="$WORK/path${PYTHONPATH:+:$PYTHONPATH}" MHUB_HOME="$WORK/home"
unset MHUB_REGISTRY MHUB_ENDPOINT MHUB_OFFLINE MHUB_LOAD_PLUGINS

"$PY" -c "import torch; ok = torch.cuda.is_available(); print('torch', torch.__version__, '| cuda', \
torch.version.cuda, '|', torch.cuda.get_device_name(0) if ok else 'NO CUDA DEVICE')"

echo "== cuda-marked tests"
"$PY" -m pytest tests -m cuda -q -rs -p no:cacheprovider -o addopts="" --timeout 300

echo "== mhub validate on a generated resnet50 checkpoint"
"$PY" - "$WORK/resnet50.pth" <<'PYEOF'
import sys, torch, torchvision
torch.manual_seed(0)
model = torchvision.models.resnet50()
with torch.no_grad():  # BatchNorm statistics as a trained model would have them
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.uniform_(-0.1, 0.1)
            m.running_var.uniform_(0.5, 1.5)
torch.save(model.state_dict(), sys.argv[1])
PYEOF
"$PY" -m mhub convert "$WORK/resnet50.pth" --model resnet50 --from torchvision -o "$WORK/resnet50.safetensors"
"$PY" -m mhub validate resnet50 --weights "$WORK/resnet50.safetensors" --reference torchvision:resnet50 \
    --reference-weights "$WORK/resnet50.pth" --device cpu --device cuda

echo "== inference benchmark on CUDA, bfloat16 (benchmarks/inference_cpu.py --device cuda)"
"$PY" benchmarks/inference_cpu.py --device cuda --dtype bfloat16
