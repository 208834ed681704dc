#!/usr/bin/env bash
# Issue 17 item 1: the LTC with ltc_lr_scale=10 and each env's shared optimiser settings (no LTC-specific learning
# rate) on the envs where the old per-env LTC preset (until 2026-11-28) met its goal, 3 seeds at 100k steps; plus PendulumNoVel-v1 seeds
# 3 and 4 (seeds 0-2 are the ablation's lr-scale-10 row, the same configuration).
#   bash scripts/ltc_recheck.sh [OUT] [JOBS]
set -euo pipefail
out=${1:-docs/data/ltc_ablation}
jobs=${2:-2}
mkdir -p "$out"
run() {  # env, base learning rate, seeds, tag
  local env=$1 lr=$2 seeds=$3 tag=$4
  [ -f "$out/$tag.json" ] && { echo "skip $tag (done)"; return; }
  python scripts/bench_ppo.py --envs "$env" --policies ltc --seeds $seeds --timesteps 100000 --eval-episodes 20 \
    --jobs "$jobs" --tag "$tag" --json "$out/$tag.json" \
    --set algo.learning_rate="$lr" --set algo.n_epochs=10 --set policy_kwargs.ltc_lr_scale=10
}
run PendulumNoVel-v1 0.001 "3 4" lr-scale-10-seeds-3-4
run Pendulum-v1 0.001 "0 1 2" Pendulum-v1-lr-scale-10
run InvertedPendulum-v5 0.0003 "0 1 2" InvertedPendulum-v5-lr-scale-10
run LaneKeepingState-v0 0.0003 "0 1 2" LaneKeepingState-v0-lr-scale-10
# Pendulum-v1 on 5 seeds before the preset changed (seeds 3 and 4, with the scale and with the old per-env preset:
# lr 3e-3, no scale), since seed 0 with the scale fell below the env's -200 goal
[ -f "$out/Pendulum-v1-lr-scale-10-seeds-3-4.json" ] || python scripts/bench_ppo.py --envs Pendulum-v1 --policies ltc \
  --seeds 3 4 --timesteps 100000 --eval-episodes 20 --jobs "$jobs" --tag Pendulum-v1-lr-scale-10-seeds-3-4 \
  --json "$out/Pendulum-v1-lr-scale-10-seeds-3-4.json" --set policy_kwargs.ltc_lr_scale=10 \
  --set algo.learning_rate=0.001 --set algo.n_epochs=10
[ -f "$out/Pendulum-v1-old-preset-seeds-3-4.json" ] || python scripts/bench_ppo.py --envs Pendulum-v1 --policies ltc \
  --seeds 3 4 --timesteps 100000 --eval-episodes 20 --jobs "$jobs" --tag Pendulum-v1-old-preset-seeds-3-4 \
  --json "$out/Pendulum-v1-old-preset-seeds-3-4.json" --set policy_kwargs.ltc_lr_scale=1 --set algo.learning_rate=0.003
# today's preset with the cell's motor output map at the rate itself (ltc_output_lr_scale=1; ablation row
# lr-scale-10-out-map-1) on Pendulum-v1, 5 seeds (it was not better there, so it did not become the preset and the
# other envs were not rechecked)
run_out() {  # env, base learning rate, seeds
  local env=$1 lr=$2 seeds=$3 tag=$1-out-map-1
  [ -f "$out/$tag.json" ] && { echo "skip $tag (done)"; return; }
  python scripts/bench_ppo.py --envs "$env" --policies ltc --seeds $seeds --timesteps 100000 --eval-episodes 20 \
    --jobs "$jobs" --tag "$tag" --json "$out/$tag.json" --set algo.learning_rate="$lr" --set algo.n_epochs=10 \
    --set policy_kwargs.ltc_lr_scale=10 --set policy_kwargs.ltc_output_lr_scale=1
}
run_out Pendulum-v1 0.001 "0 1 2 3 4"
