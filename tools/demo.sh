#!/usr/bin/env bash
# The main job (run by `make demo` after setup):
#   1. generate a furnished synthetic room from a seed the embedded model never saw (ScanNet
#      format + ScanQA / ScanRefer / SQA3D / Multi3DRefer annotations),
#   2. write its posed RGB-D frames to a rosbag2 bag (mcap),
#   3. replay the bag through fusion_node and inference_node over ROS topics, ask every
#      question through the AskScene service with the embedded model, and score the answers
#      and grounded boxes with the official metrics.
set -euo pipefail
out="${DEMO_OUT:-demo_output}"
seed="${DEMO_SEED:-20261122}"
rm -rf "$out"
mkdir -p "$out"
start=$(date +%s)

echo "== 1/3 generating an unseen synthetic room (seed $seed) into $out/synth"
scene-llm synth --out "$out/synth" --scenes 1 --seed "$seed" --frames 60 --width 320 \
    --height 240 --no-sens --split-ratios 0,0,1
scene_dir=$(ls -d "$out"/synth/scans/scene*/ | head -1)
scene_id=$(basename "$scene_dir")
annotations="$out/synth/annotations"

echo "== 2/3 writing $scene_id to the rosbag2 bag $out/${scene_id}_bag (mcap)"
scene-llm bag "$scene_dir" "$out/${scene_id}_bag" --storage mcap

echo "== 3/3 replaying the bag through the nodes and asking AskScene (embedded model)"
scene-llm evaluate --bag "$out/${scene_id}_bag" --out "$out/report" --as-fast-as-possible \
    --gt-scene "$scene_dir" --questions "$annotations/ScanQA_v1.0_test.json" \
    "$annotations/ScanRefer_filtered_test.json" \
    "$annotations/v1_balanced_questions_test_scannetv2.json" \
    "$annotations/multi3drefer_test.json"

echo "== done in $(( $(date +%s) - start )) s; outputs in $out/:"
echo "   report/ (report.json, report.md, topdown.png, grounding/*.png: 2D masks and boxes),"
echo "   ${scene_id}_bag/ (rosbag2), synth/ (ScanNet-format room + annotations)"
