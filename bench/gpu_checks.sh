#!/usr/bin/env bash
# The GPU checks of issue #3 as one prepared run, for a session that is lent a GPU machine.
#
#   bash bench/gpu_checks.sh prepare    # here: fill .devkit/ (git-ignored) with what the GPU machine lacks
#   bash bench/gpu_checks.sh run        # there: device run "bash bench/gpu_checks.sh run", carry [".devkit"]
#   DEVICE=cpu QUICK=1 bash bench/gpu_checks.sh run   # here: the same plumbing on the CPU, tiny sizes
#
# The GPU image has PyTorch but not diffusers (the peer in the benches) and none of MNIST, which
# lies outside the repository (../shared/data); `prepare` downloads diffusers' wheel (pure Python)
# and importlib_metadata, and copies the MNIST files, into .devkit/ (about 8 MB). `run` installs
# the wheels into /tmp/site, then: a CUDA smoke test of train → sample → evaluate through the CLI,
# the training-throughput bench (batch 64 and 256), the sampling bench on the shipped checkpoint,
# and time to digits (eager, then torch.compile). Everything is logged to $OUT/gpu_checks.log
# (or .devkit/gpu_checks.log without $OUT). Takes about 6–8 minutes on an H200.
set -uo pipefail
cd "$(dirname "$0")/.."
KIT=.devkit
DEVICE=${DEVICE:-cuda}
QUICK=${QUICK:-0}

prepare() {
    mkdir -p "$KIT/whl" "$KIT/data/MNIST/raw"
    grep -qxF "/$KIT/" .git/info/exclude 2>/dev/null || echo "/$KIT/" >> .git/info/exclude
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d "$KIT/whl" \
        diffusers==0.42.1 importlib_metadata==8.7.0
    cp "${DDPM_DATA_DIR:-../shared/data}"/MNIST/raw/* "$KIT/data/MNIST/raw/"
    du -sh "$KIT"
}

run() {
    local log=${OUT:-$KIT}/gpu_checks.log
    local tmp
    tmp=$(mktemp -d)
    exec > >(tee "$log") 2>&1
    if ! python3 -c "import diffusers" 2>/dev/null; then  # the GPU image: add the carried wheels to its Python
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site "$KIT"/whl/*.whl || exit 1
        export PYTHONPATH=/tmp/site
    fi
    export DDPM_DATA_DIR=$KIT/data PYTHONUNBUFFERED=1
    # time to digits: batch 256 (a step of the small U-Net costs about the same at 64 or 256 on a GPU), and as
    # many steps as fit the 2 minutes (--steps 0 times the first ones; the LR decays over the rest)
    local steps=0 batch=256 train_steps=20 ddpm_steps=1000 minutes=2 eval_every=500 smoke_steps=200 eval_n=256
    if [ "$QUICK" = 1 ]; then steps=0 batch=8 train_steps=1 ddpm_steps=20 minutes=0.5 eval_every=100 smoke_steps=5 eval_n=32; fi

    step() { echo; echo "=== $* ==="; date -u +%T; timeout 300 "$@" || echo "!!! failed ($?): $*"; }
    step nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    step python3 -c "import torch, diffusers; print('torch', torch.__version__, 'diffusers', diffusers.__version__, \
'cuda', torch.cuda.is_available())"
    step python3 -m core.train --data mnist --model small --steps "$smoke_steps" --device "$DEVICE" \
        --out "$tmp/smoke" --quiet
    step python3 -m core.sample --ckpt "$tmp/smoke" --device "$DEVICE" --n 16 --method ddim --steps 50 \
        --out "${OUT:-$KIT}/smoke_samples.png"
    # guided sampling on the device (the classifier's gradient and classifier-free guidance): prints how many are 7s
    step python3 -m core.sample --ckpt checkpoints/mnist --device "$DEVICE" --n 16 --method ddim --steps 20 --guide 7 \
        --out "${OUT:-$KIT}/guided_samples.png"
    step python3 -m core.sample --ckpt checkpoints/mnist_conditional --device "$DEVICE" --n 16 --method ddim \
        --steps 20 --guide 7 --out "${OUT:-$KIT}/cfg_samples.png"
    step python3 -m core.evaluate --ckpt checkpoints/mnist --device "$DEVICE" --sampler ddim:50 --sampler ddpm \
        --n "$eval_n"
    step python3 bench/bench_unet_train.py --device "$DEVICE" --steps "$train_steps"
    step python3 bench/bench_unet_train.py --device "$DEVICE" --steps "$train_steps" --batch 256
    step python3 bench/bench_image_sampling.py --ckpt checkpoints/mnist --device "$DEVICE" --ddpm-steps "$ddpm_steps"
    step python3 bench/bench_time_to_digits.py --device "$DEVICE" --steps "$steps" --batch "$batch" \
        --max-minutes "$minutes" --eval-every "$eval_every"
    step python3 bench/bench_time_to_digits.py --device "$DEVICE" --steps "$steps" --batch "$batch" \
        --max-minutes "$minutes" --eval-every "$eval_every" --compile
    rm -rf "$tmp"
    echo; echo "=== done ==="; date -u +%T
}

case "${1:-}" in
    prepare) prepare ;;
    run) run ;;
    *) echo "usage: bash bench/gpu_checks.sh prepare|run" >&2; exit 2 ;;
esac
