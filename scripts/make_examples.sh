#!/usr/bin/env bash
# Regenerate the example figures in docs/examples/ that the README shows, from the shipped
# scenarios (after scripts/setup.sh). The BERT-base profile is measured once (~15 s) and cached.
# With --with-training it also reruns the MRPC fine-tuning (~1.5 h: the time-to-accuracy plot and the
# README's Table II, copied to scenarios/data/train_mrpc_reduced/) and
# the one-hour MRPC convergence measurement (rewriting scenarios/data/mrpc_convergence.json, the
# measured curve of fig2_measured_convergence.yaml) and the 50-minute async_vs_sync_mrpc study (its
# tables to scenarios/data/async_vs_sync_mrpc/, its figure to docs/examples/); without it, the training
# runs' figures are redrawn from their committed outputs (scripts/redraw_figures.py).
set -euo pipefail
cd "$(dirname "$0")/.."
S=.venv/bin/splitsim
# --overwrite: out/ holds the previous examples, possibly of an earlier version of a scenario
$S run scenarios/fedsllm_fig2.yaml --out out/fig2 --no-progress --overwrite
$S run scenarios/scheme_comparison_mrpc.yaml --out out/scheme_comparison_mrpc --no-progress --overwrite
$S run scenarios/sfl_cut_bert.yaml --out out/sfl_cut_bert --no-progress --overwrite
$S run scenarios/splitllm_cut_mrpc.yaml --out out/splitllm_cut_mrpc --no-progress --overwrite
$S run scenarios/joint_cut_bert.yaml --out out/joint_cut_bert --no-progress --overwrite
$S run scenarios/fedsllm_energy.yaml --out out/fedsllm_energy --no-progress --overwrite
$S run scenarios/fedsllm_energy_bert.yaml --out out/fedsllm_energy_bert --no-progress --overwrite
$S run scenarios/fig2_dynamic.yaml --out out/fig2_dynamic --no-progress --overwrite
$S run scenarios/fig2_nr.yaml --out out/fig2_nr --no-progress --overwrite
$S run scenarios/fig2_dynamic_nr.yaml --out out/fig2_dynamic_nr --no-progress --overwrite
$S run scenarios/fl_dynamic.yaml --out out/fl_dynamic --no-progress --overwrite
$S run scenarios/llama8b_phone_cut.yaml --out out/llama8b_phone_cut --no-progress --overwrite
$S run scenarios/llama8b_phone_cut_splitllm.yaml --out out/llama8b_phone_cut_splitllm --no-progress --overwrite
$S sweep scenarios/fedsllm_fig2.yaml --set cell.users=20,50,100 --set radio.uplink_main_bandwidth_hz=10e6,20e6 \
  --out out/sweep_fig2 --no-progress --overwrite
if [ "${1:-}" = "--with-training" ]; then
  $S train scenarios/splitllm_train_mrpc_reduced.yaml --out out/train_mrpc_reduced --no-progress --overwrite
  mkdir -p scenarios/data/train_mrpc_reduced  # the README's Table II comes from these
  cp out/train_mrpc_reduced/{rounds.csv,table_ii.csv,summary.json,report.md} scenarios/data/train_mrpc_reduced/
  $S convergence scenarios/mrpc_convergence.yaml --out out/mrpc_convergence --no-progress --overwrite
  cp out/mrpc_convergence/convergence.json scenarios/data/mrpc_convergence.json
  $S run scenarios/async_vs_sync_mrpc.yaml --out out/async_vs_sync_mrpc --no-progress --overwrite  # ~50 min
  mkdir -p scenarios/data/async_vs_sync_mrpc  # docs/studies/async_vs_sync.md's table comes from these
  cp out/async_vs_sync_mrpc/{async_vs_sync.csv,curves.csv,staleness.csv,summary.json,report.md} \
    scenarios/data/async_vs_sync_mrpc/
  cp out/async_vs_sync_mrpc/async_vs_sync.png docs/examples/async_vs_sync_mrpc.png
fi
$S run scenarios/fig2_measured_convergence.yaml --out out/fig2_measured_convergence --no-progress --overwrite
.venv/bin/python scripts/docs_tables.py --fig2-measured out/fig2_measured_convergence  # the convergence page's tables
$S emulate scenarios/emulate_sfl_minilm.yaml --out out/emulate_sfl_minilm --no-progress --overwrite  # ~1.5 min, real processes
mkdir -p docs/examples
cp out/fig2/latency_vs_power.png docs/examples/fig2_latency_vs_power.png
cp out/fig2/reduction_vs_theory.png docs/examples/fig2_reduction_vs_theory.png
cp out/scheme_comparison_mrpc/scheme_comparison.png docs/examples/scheme_comparison_mrpc.png
cp out/sfl_cut_bert/cut_layer.png docs/examples/sfl_cut_bert.png
cp out/splitllm_cut_mrpc/cut_layer.png docs/examples/splitllm_cut_mrpc.png
cp out/joint_cut_bert/joint_cut.png docs/examples/joint_cut_bert.png
cp out/fedsllm_energy/delay_energy.png docs/examples/fedsllm_energy.png
cp out/fedsllm_energy_bert/delay_energy.png docs/examples/fedsllm_energy_bert.png
cp out/fig2_dynamic/robustness.png docs/examples/fig2_dynamic.png
cp out/fig2_nr/latency_vs_power.png docs/examples/fig2_nr_latency_vs_power.png
cp out/fig2_dynamic_nr/robustness.png docs/examples/fig2_dynamic_nr.png
cp out/fl_dynamic/robustness.png docs/examples/fl_dynamic.png
cp out/llama8b_phone_cut/cut_layer.png docs/examples/llama8b_phone_cut.png
cp out/llama8b_phone_cut_splitllm/cut_layer.png docs/examples/llama8b_phone_cut_splitllm.png
cp out/sweep_fig2/sweep.png docs/examples/sweep_fig2.png
cp out/fig2_measured_convergence/latency_vs_power.png docs/examples/fig2_measured_convergence.png
cp out/emulate_sfl_minilm/gantt.png docs/examples/emulate_sfl_minilm_gantt.png
# the training runs' figures, from their committed outputs (rewritten above with --with-training)
.venv/bin/python scripts/redraw_figures.py
ls -la docs/examples
