"""The core stays free of ROS: rclpy and the optional ROS libraries only in the adapters."""
from __future__ import annotations

import ast
import xml.etree.ElementTree as ET
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ROS_MODULES = {"rclpy", "tf2_ros", "message_filters", "cv_bridge", "vision_msgs", "launch",
               "launch_ros", "sensor_msgs", "geometry_msgs", "std_msgs", "nav_msgs",
               "visualization_msgs", "std_srvs", "action_msgs", "builtin_interfaces"}
# Adapters that may talk ROS: the nodes and the command line.
ADAPTERS = ("scene_llm_ros/nodes/", "scene_llm_ros/commands/", "scene_llm_ros/cli.py")


def imported_roots(path: Path) -> set[str]:
    roots = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
            if node.module.split(".")[:2] in (["scene_llm_ros", "msg"], ["scene_llm_ros", "srv"],
                                              ["scene_llm_ros", "action"]):
                roots.add("scene_llm_ros interfaces")
    return roots


def test_ros_is_imported_only_in_adapters():
    offenders = []
    for path in sorted([*ROOT.glob("scene_llm_ros/**/*.py"), *ROOT.glob("training/**/*.py")]):
        rel = path.relative_to(ROOT).as_posix()
        if rel.startswith(ADAPTERS):
            continue
        ros = imported_roots(path) & (ROS_MODULES | {"scene_llm_ros interfaces"})
        if ros:
            offenders.append(f"{rel}: {sorted(ros)}")
    assert not offenders, "ROS imported in the core:\n" + "\n".join(offenders)


def test_package_xml_is_format_3_and_names_the_build_type():
    root = ET.parse(ROOT / "package.xml").getroot()
    assert root.tag == "package" and root.get("format") == "3"
    assert root.findtext("name") == "scene_llm_ros"
    assert root.find("export/build_type").text == "ament_cmake"
    assert root.find("member_of_group").text == "rosidl_interface_packages"
    version = root.findtext("version")
    import scene_llm_ros
    assert version == scene_llm_ros.__version__
