"""Data types and file formats shared by the nodes, the CLI and training (no ROS inside)."""
