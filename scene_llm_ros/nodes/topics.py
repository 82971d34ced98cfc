"""Topic and service names of the nodes (relative, so namespaces and remappings apply).

The launch files and the replay evaluator use these names; a test keeps the launch files'
remappings in step with them.
"""
COLOR_IMAGE = "color/image"
DEPTH_IMAGE = "depth/image"
CAMERA_INFO = "color/camera_info"
POSE = "pose"
#: What fusion_node subscribes to (besides /tf and /tf_static), in remapping order.
FUSION_INPUTS = (COLOR_IMAGE, DEPTH_IMAGE, CAMERA_INFO, POSE)

SCENE_STATUS = "scene/status"
SCENE_POINTS = "scene/points"
SCENE_PATCHES = "scene/patches"
SCENE_RESET = "scene/reset"
SCENE_SAVE = "scene/save"
SCENE_LOAD = "scene/load"

ASK_SCENE = "ask_scene"
GROUNDING_MARKERS = "grounding/markers"
GROUNDING_MASK = "grounding/mask"
GROUNDING_DETECTIONS = "grounding/detections"
