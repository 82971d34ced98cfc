#!/usr/bin/env bash
# Reproduce the embedded default model shipped in scene_llm_ros/embedded_model/ (2 CPU cores:
# 9 min to make the datasets, 55 min of training, 3.5 min of evaluation). Run from the
# repository root after `make setup`:
#   . tools/env.sh && bash training/embedded_model.sh [WORK_DIR]
# WORK_DIR (default runs/embedded_model) receives the dataset, the runs and the evaluation;
# the package copy is replaced only after every step succeeded.
set -euo pipefail
work="${1:-runs/embedded_model}"
data="$work/synth300"
extra="$work/synth300_seed8"
more="$work/synth300_seed9"
mkdir -p "$work"
# One torch thread: on 2 cores a second busy process makes two threads spin-wait (47x slower).
export OMP_NUM_THREADS=1

synth() {  # OUT SEED SPLIT_RATIOS: 300 rooms of 30 frames of 320x240 each, unless made already
    [ -d "$1/annotations" ] || scene-llm synth --out "$1" --scenes 300 --seed "$2" --frames 30 \
        --width 320 --height 240 --no-sens --split-ratios "$3"
}
# Two datasets at a time, one per core. 300 rooms: 270 train, 30 test (never seen in training);
# 600 more rooms from two other seeds, all for training, that stage 0 and the listener see:
# the encoder's patch classes are what object segments are cut along, and they generalise
# with more rooms; so do the listener's relations.
synth "$data" 7 0.9,0.0,0.1 &
main_rooms=$!
synth "$extra" 8 1,0,0
synth "$more" 9 1,0,0
wait "$main_rooms"

# Stage 0: the built-in patch encoder learns the words of the objects its patches show
# (16 passes under bfloat16 autocast, 14.4 min).
OMP_NUM_THREADS=2 scene-llm align-encoder --config training/configs/encoder_alignment.yaml \
    --data "$data" --extra-data "$extra" "$more" --out "$work/encoder"

# The LLM stages run as two DDP ranks of one thread (4 examples each per step: a global batch
# of 8): each rank fuses half the rooms (3 min instead of 6); the tiny model's steps are
# mostly overhead, so they gain only 5 %.
ranks="torchrun --standalone --nproc_per_node=2 -m training"

# The whole scene LLM (tiny LLM from a config + scene modules + grounding head), all tasks.
$ranks --config training/configs/embedded.yaml --data "$data" --out "$work/llm" \
    --encoder "$work/encoder/patch_encoder"

# The segment listener (which object segment of the fused scene a description means), from
# the descriptions of all 870 rooms (the extra ones fused here, two processes at a time),
# then the box completer (whole object boxes from the seen parts).
OMP_NUM_THREADS=2 scene-llm train-listener --config training/configs/segment_listener.yaml \
    --checkpoint "$work/llm/final" --data "$data" --extra-data "$extra" "$more" \
    --out "$work/listener"

# The segment answerer: short answers (ScanQA, SQA3D) from the segments, starting from the
# listener.
OMP_NUM_THREADS=2 scene-llm train-answerer --config training/configs/segment_answerer.yaml \
    --checkpoint "$work/listener/final" --data "$data" --out "$work/answerer"

# Held-out report (the numbers quoted in training/README.md).
scene-llm eval-offline --checkpoint "$work/answerer/final" --data "$data" --split test \
    --out "$work/eval" --no-meteor

rm -rf scene_llm_ros/embedded_model.new
cp -r "$work/answerer/final" scene_llm_ros/embedded_model.new
rm -rf scene_llm_ros/embedded_model.new/training_state
rm -rf scene_llm_ros/embedded_model
mv scene_llm_ros/embedded_model.new scene_llm_ros/embedded_model
echo "embedded model -> scene_llm_ros/embedded_model ($(du -sh scene_llm_ros/embedded_model | cut -f1))"
