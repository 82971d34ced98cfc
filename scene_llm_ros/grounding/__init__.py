"""From a predicted 3D box to the grounded object: its 3D points, refined box and 2D mask.

    floor_z = estimate_floor_height(snapshot.points)          # once per snapshot
    grounded = ground_object(snapshot.points, box_center, box_size, floor_z=floor_z)
    view = mask_in_view(snapshot.points[grounded.indices], snapshot.keyframe)
"""
from scene_llm_ros.grounding.class_segments import object_classes, segment_by_class
from scene_llm_ros.grounding.errors import GroundingInputError
from scene_llm_ros.grounding.floor import estimate_floor_height
from scene_llm_ros.grounding.object_geometry import GroundedGeometry, ground_object
from scene_llm_ros.grounding.proposals import ObjectProposal, propose_objects
from scene_llm_ros.grounding.snapshot_grounder import SnapshotGrounder
from scene_llm_ros.grounding.supports import SupportPlane
from scene_llm_ros.grounding.view_mask import ViewMask, mask_in_view

__all__ = ["GroundedGeometry", "GroundingInputError", "ObjectProposal", "SnapshotGrounder",
           "SupportPlane", "ViewMask", "estimate_floor_height", "ground_object",
           "mask_in_view", "object_classes", "propose_objects", "segment_by_class"]
