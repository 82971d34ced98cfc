"""Answering AskScene requests without ROS: validation, a bounded request queue with a worker,
timeouts and cancellation, the model call on one consistent snapshot, and the grounded
objects' geometry (refined box, 3D points, 2D mask). The inference node adapts it to ROS."""
