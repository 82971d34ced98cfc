"""Live RGB-D ingest: synchronise colour, depth and camera info, pose each frame at its stamp,
and feed the fusion core from a worker thread with bounded queues and counted drops.

Messages are duck-typed: rclpy messages and rosbags messages have the same fields, so the
fusion node and offline tools share this code. Nothing here imports ROS.
"""
