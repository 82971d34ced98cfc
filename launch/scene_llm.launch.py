"""fusion_node + inference_node on a robot.

    ros2 launch scene_llm_ros scene_llm.launch.py checkpoint:=/models/scene_llm
    ros2 launch scene_llm_ros scene_llm.launch.py checkpoint:=... namespace:=robot1 \\
        params_file:=$(ros2 pkg prefix scene_llm_ros)/share/scene_llm_ros/config/realsense.yaml

The fusion node runs near the camera, the inference node may run elsewhere (it reads the
scene from ``scene/patches``). Both configure and activate themselves. Camera topics default
to a RealSense driver with aligned depth; override them with the *_topic arguments.
"""
from launch.actions import DeclareLaunchArgument
from launch.substitutions import LaunchConfiguration, PathJoinSubstitution
from launch_ros.actions import Node
from launch_ros.parameter_descriptions import ParameterValue
from launch_ros.substitutions import FindPackageShare

from launch import LaunchDescription

# Node input -> launch argument holding the topic it is remapped to, and that argument's
# default. (A test checks these against scene_llm_ros.nodes.topics.FUSION_INPUTS.)
REMAPPINGS = {
    "color/image": ("color_topic", "/camera/camera/color/image_raw"),
    "depth/image": ("depth_topic", "/camera/camera/aligned_depth_to_color/image_raw"),
    "color/camera_info": ("info_topic", "/camera/camera/color/camera_info"),
    "pose": ("pose_topic", "pose"),
}
# Parameters set from launch arguments, per node (checked against the declared parameters).
FUSION_PARAMETERS = {"patch_encoder": "checkpoint"}
INFERENCE_PARAMETERS = {"checkpoint": "checkpoint"}


def generate_launch_description() -> LaunchDescription:
    arguments = [
        DeclareLaunchArgument("checkpoint", default_value="embedded",
                              description="model checkpoint directory, or 'embedded' for "
                                          "the default model shipped with the package"),
        DeclareLaunchArgument(
            "params_file", description="parameters of both nodes",
            default_value=PathJoinSubstitution([FindPackageShare("scene_llm_ros"), "config",
                                                "scene_llm.yaml"])),
        DeclareLaunchArgument("namespace", default_value=""),
        DeclareLaunchArgument("use_sim_time", default_value="false"),
    ] + [DeclareLaunchArgument(argument, default_value=default)
         for argument, default in REMAPPINGS.values()]
    common = {"use_sim_time": ParameterValue(LaunchConfiguration("use_sim_time"), value_type=bool)}
    remappings = [(name, LaunchConfiguration(argument))
                  for name, (argument, _) in REMAPPINGS.items()]
    fusion = Node(
        package="scene_llm_ros", executable="fusion_node", name="fusion_node",
        namespace=LaunchConfiguration("namespace"), output="screen", remappings=remappings,
        parameters=[LaunchConfiguration("params_file"), common,
                    {name: LaunchConfiguration(argument)
                     for name, argument in FUSION_PARAMETERS.items()}])
    inference = Node(
        package="scene_llm_ros", executable="inference_node", name="inference_node",
        namespace=LaunchConfiguration("namespace"), output="screen",
        parameters=[LaunchConfiguration("params_file"), common,
                    {name: LaunchConfiguration(argument)
                     for name, argument in INFERENCE_PARAMETERS.items()}])
    return LaunchDescription([*arguments, fusion, inference])
