#!/usr/bin/env bash
# The layer-step figures of docs/deploy.md: five `bench_cells.py --quick` runs in a row (each times our layer, our
# cell and ncps interleaved), the last one as docs/data/deploy/bench_cells_layer_step.json, all five (one JSON per line) as
# docs/data/deploy/bench_cells_layer_step_repeats.jsonl; then re-render the tables.   bash scripts/bench_layer_step.sh [RUNS]
set -euo pipefail
runs=${1:-5}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for i in $(seq "$runs"); do
  python scripts/bench_cells.py --quick --json "$tmp/run$i.json"
done
for i in $(seq "$runs"); do python -c "import json,sys; print(json.dumps(json.load(open(sys.argv[1]))))" "$tmp/run$i.json"; done \
  > docs/data/deploy/bench_cells_layer_step_repeats.jsonl
cp "$tmp/run$runs.json" docs/data/deploy/bench_cells_layer_step.json
python scripts/render_deploy_tables.py
