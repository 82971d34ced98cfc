"""One module per `scene-llm` verb (see scene_llm_ros.cli)."""
