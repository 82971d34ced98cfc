"""Live RGB-D fusion into a TSDF map and a 3D patch memory (numpy, Open3D, torch; no ROS)."""
