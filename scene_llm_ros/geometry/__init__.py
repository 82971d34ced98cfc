"""Small geometric primitives shared by fusion, grounding, metrics and the nodes."""
