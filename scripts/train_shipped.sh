#!/usr/bin/env bash
# Reproduce every shipped 2D checkpoint under checkpoints/ (the exact commands used), then
# regenerate their model cards and the index table.
#
#   bash scripts/train_shipped.sh                 # all twelve 2D checkpoints, one after another
#   bash scripts/train_shipped.sh moons spiral    # only the named ones
#
# Run from the repository root. The shipped files were made on the 2-core CPU dev machine with
# one thread (OMP_NUM_THREADS=1, niced; another job used the other core). Every 2D checkpoint gets
# the MLP denoiser (core.mlp defaults), T=1000, batch 512, lr 2e-3, EMA 0.995 (core.train's 2D
# default), seed 0, 4000 steps each (s_curve: 12000; at 4000 its thin curve came out too diffuse,
# SW ratio 1.41). The three swiss_roll_* checkpoints share that budget and differ only in
# the noise schedule, so the Schedules tab can compare what β does to learning. swiss_roll_cosine_v is
# swiss_roll_cosine with the network trained to predict v instead of ε (--prediction v), the same budget:
# the Reverse tab can compare the two targets (e.g. under DDIM-50, where ε's error at t = T is amplified).
# eight_gaussians_conditional is eight_gaussians trained class-conditional on its 8 components (--conditional,
# labels dropped 10 % of the time), for classifier-free guidance beside the exact classifier guidance.
# MNIST (checkpoints/mnist) and the classifier (checkpoints/classifiers) are trained separately.
set -euo pipefail
if ((BASH_VERSINFO[0] < 4)); then  # declare -A below; macOS ships bash 3.2
    echo "scripts/train_shipped.sh needs bash 4 or newer (on macOS: brew install bash), not $BASH_VERSION" >&2
    exit 1
fi
cd "$(dirname "$0")/.."

export OMP_NUM_THREADS=1

# name -> "data schedule steps [prediction [conditional]]" (prediction: eps unless given)
declare -A RUNS=(
  [swiss_roll_linear]="swiss_roll linear 4000"
  [swiss_roll_cosine]="swiss_roll cosine 4000"
  [swiss_roll_sigmoid]="swiss_roll sigmoid 4000"
  [swiss_roll_cosine_v]="swiss_roll cosine 4000 v"
  [moons]="moons linear 4000"
  [s_curve]="s_curve linear 12000"
  [circles]="circles linear 4000"
  [eight_gaussians]="eight_gaussians linear 4000"
  [checkerboard]="checkerboard linear 4000"
  [cross]="cross linear 4000"
  [spiral]="spiral linear 4000"
  [eight_gaussians_conditional]="eight_gaussians linear 4000 eps conditional"
)
ORDER=(swiss_roll_linear swiss_roll_cosine swiss_roll_sigmoid swiss_roll_cosine_v moons s_curve circles eight_gaussians checkerboard cross spiral eight_gaussians_conditional)

names=("$@")
[ ${#names[@]} -eq 0 ] && names=("${ORDER[@]}")
for name in "${names[@]}"; do
  spec=${RUNS[$name]:-}
  if [ -z "$spec" ]; then echo "unknown shipped checkpoint: $name (known: ${ORDER[*]})" >&2; exit 2; fi
  read -r data schedule steps prediction conditional <<<"$spec"
  prediction=${prediction:-eps}
  echo "== $name: data=$data schedule=$schedule steps=$steps prediction=$prediction ($(date +%T))" >&2
  nice -n 5 python -m core.train --data "$data" --schedule "$schedule" --T 1000 --steps "$steps" --batch 512 \
    --lr 2e-3 --seed 0 --prediction "$prediction" ${conditional:+--conditional} --overwrite --out "checkpoints/$name"
done

# Model cards (fresh `python -m core.evaluate` numbers) and the index table checkpoints/README.md.
nice -n 5 python scripts/model_card.py "${names[@]/#/checkpoints/}" --index
