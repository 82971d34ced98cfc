"""Readers and writers of the ScanNet v2 file formats (meshes, segmentation, meta, frames)."""
from scene_llm_ros.data.scannet.frames import (
                                               count_exported_frames,
                                               read_exported_frames,
                                               write_exported_frames,
)
from scene_llm_ros.data.scannet.labels import (
                                               BENCHMARK_CLASSES,
                                               BENCHMARK_NYU40_IDS,
                                               TSV_COLUMNS,
                                               LabelMap,
                                               write_tsv,
)
from scene_llm_ros.data.scannet.mesh import ScanNetMesh, read_mesh, write_mesh
from scene_llm_ros.data.scannet.meta import SceneMeta, read_meta, write_meta
from scene_llm_ros.data.scannet.scene import (
                                               ObjectInstance,
                                               ScanNetScene,
                                               find_label_map,
                                               find_scene_files,
                                               iter_scene_frames,
                                               load_scene,
                                               scene_file_paths,
)
from scene_llm_ros.data.scannet.segmentation import (
                                               SegGroup,
                                               read_aggregation,
                                               read_segs,
                                               write_aggregation,
                                               write_segs,
)
from scene_llm_ros.data.scannet.sens import IMU_DTYPE, SensFile, read_sens, write_sens

__all__ = [
    "BENCHMARK_CLASSES", "BENCHMARK_NYU40_IDS", "IMU_DTYPE", "TSV_COLUMNS", "LabelMap",
    "ObjectInstance", "ScanNetMesh", "ScanNetScene", "SceneMeta", "SegGroup", "SensFile",
    "count_exported_frames", "find_label_map", "find_scene_files", "iter_scene_frames",
    "load_scene", "read_aggregation", "read_exported_frames", "read_mesh", "read_meta",
    "read_segs", "read_sens", "scene_file_paths", "write_aggregation", "write_exported_frames",
    "write_mesh", "write_meta", "write_segs", "write_sens", "write_tsv",
]
