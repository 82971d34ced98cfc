"""fusion_node + inference_node for a recorded bag played with ``ros2 bag play``.

    ros2 launch scene_llm_ros replay.launch.py checkpoint:=/models/scene_llm
    ros2 bag play my_bag --clock

Sim time follows the bag's /clock; images are taken reliably so no frame of the bag is lost
to the queue policy of a live camera. Topic defaults are those `scene-llm bag` writes; pass
the *_topic arguments for other bags. For a scripted evaluation with metrics use
``scene-llm evaluate`` instead.
"""
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

REMAPPINGS = {
    "color/image": ("color_topic", "/camera/color/image_raw"),
    "depth/image": ("depth_topic", "/camera/depth/image_rect_raw"),
    "color/camera_info": ("info_topic", "/camera/color/camera_info"),
    "pose": ("pose_topic", "/camera/pose"),
}
FUSION_PARAMETERS = {"patch_encoder": "checkpoint"}
INFERENCE_PARAMETERS = {"checkpoint": "checkpoint"}
# Fixed for replay: reliable images, a queue long enough for a bag played at full rate.
FUSION_REPLAY = {"use_sim_time": True, "qos_reliability": "reliable", "queue_size": 100}
INFERENCE_REPLAY = {"use_sim_time": True}


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("checkpoint", default_value="embedded",
                              description="model checkpoint directory, or 'embedded' for "
                                          "the default model shipped with the package"),
        DeclareLaunchArgument(
            "params_file", default_value=PathJoinSubstitution(
                [FindPackageShare("scene_llm_ros"), "config", "scene_llm.yaml"])),
    ] + [DeclareLaunchArgument(argument, default_value=default)
         for argument, default in REMAPPINGS.values()]
    remappings = [(name, LaunchConfiguration(argument))
                  for name, (argument, _) in REMAPPINGS.items()]
    fusion = Node(
        package="scene_llm_ros", executable="fusion_node", name="fusion_node",
        output="screen", remappings=remappings,
        parameters=[LaunchConfiguration("params_file"), FUSION_REPLAY,
                    {name: LaunchConfiguration(argument)
                     for name, argument in FUSION_PARAMETERS.items()}])
    inference = Node(
        package="scene_llm_ros", executable="inference_node", name="inference_node",
        output="screen",
        parameters=[LaunchConfiguration("params_file"), INFERENCE_REPLAY,
                    {name: LaunchConfiguration(argument)
                     for name, argument in INFERENCE_PARAMETERS.items()}])
    return LaunchDescription([*arguments, fusion, inference])
