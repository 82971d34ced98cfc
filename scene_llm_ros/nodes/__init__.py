"""ROS 2 adapters around the core: lifecycle nodes, message conversions, parameters."""
