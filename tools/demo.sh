#!/usr/bin/env bash
# The main job, as far as the pipeline exists today (run by `make demo` after setup):
#   1. generate a furnished synthetic room the model never saw (ScanNet format + annotations),
#   2. write its posed RGB-D frames to a rosbag2 (mcap) bag,
#   3. fuse the bag with the fusion core (TSDF + 3D patch memory) and score the fused surface
#      against the room's ground-truth mesh.
# Asking questions through AskScene joins with the model and replay-evaluation issues.
set -euo pipefail
out="${DEMO_OUT:-demo_output}"
seed="${DEMO_SEED:-20261122}"
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)

echo "== 1/3 generating a synthetic scene (seed $seed) into $out/synth"
scene-llm synth --out "$out/synth" --scenes 1 --seed "$seed" --frames 150 --no-sens
scene_dir=$(ls -d "$out"/synth/scans/scene*/ | head -1)
scene_id=$(basename "$scene_dir")

echo "== 2/3 writing $scene_id to the rosbag2 bag $out/${scene_id}_bag (mcap)"
scene-llm bag "$scene_dir" "$out/${scene_id}_bag" --storage mcap

echo "== 3/3 fusing the bag into $out/${scene_id}_fused"
scene-llm fuse --bag "$out/${scene_id}_bag" --out "$out/${scene_id}_fused" --gt-scene "$scene_dir"

echo "== done in $(( $(date +%s) - start )) s; outputs in $out/:"
echo "   synth/ (ScanNet-format scene + annotations), ${scene_id}_bag/ (rosbag2),"
echo "   ${scene_id}_fused/ (saved scene; fuse_summary.json has the numbers above)"
