"""Synthetic indoor scenes in the ScanNet format, with ground truth and language annotations.

    from scene_llm_ros.data.synth import SynthConfig, generate_scene, write_dataset
    scene = generate_scene(0, "scene9000_00", SynthConfig(num_frames=50))
    write_dataset("/tmp/synth", SynthConfig(), scenes=20, seed=0)
"""
from scene_llm_ros.data.synth.annotate import SceneAnnotations
from scene_llm_ros.data.synth.assembly import SceneMesh, SynthObject
from scene_llm_ros.data.synth.config import SynthConfig, SynthConfigError
from scene_llm_ros.data.synth.dataset import (
                                              scene_ids,
                                              split_scenes,
                                              write_annotations,
                                              write_dataset,
                                              write_scene,
)
from scene_llm_ros.data.synth.scene import SynthScene, generate_scene
from scene_llm_ros.data.synth.trajectory import TrajectoryError

__all__ = ["SceneAnnotations", "SceneMesh", "SynthConfig", "SynthConfigError", "SynthObject",
           "SynthScene", "TrajectoryError", "generate_scene", "scene_ids", "split_scenes",
           "write_annotations", "write_dataset", "write_scene"]
