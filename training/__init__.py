"""Offline multi-stage tuning and evaluation of the scene LLM on ScanNet-format data.

Imports the same core as the ROS nodes (``scene_llm_ros.data``, ``fusion``, ``model``,
``metrics``) and never ROS itself. Entry points::

    scene-llm train --config training/configs/stage1_alignment.yaml --out runs/stage1
    torchrun --nproc_per_node=2 -m training --config training/configs/stage1_alignment.yaml
    scene-llm eval-offline --checkpoint runs/stage3/final --data /data/synth --split test \\
        --out runs/stage3/eval
"""
