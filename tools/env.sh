# Source this file (bash or sh) to use scene_llm_ros from this checkout:
#   . tools/env.sh
# It activates the project's .venv and the interfaces built by `make setup` into install/,
# and puts the source tree first on PYTHONPATH so edits take effect without a rebuild.
SCENE_LLM_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")/.." && pwd)"
if [ ! -x "$SCENE_LLM_ROOT/.venv/bin/python" ] || [ ! -f "$SCENE_LLM_ROOT/install/local_setup.sh" ]; then
  echo "scene_llm_ros is not set up yet: run 'make setup' in $SCENE_LLM_ROOT" >&2
  return 1 2>/dev/null || exit 1
fi
. "$SCENE_LLM_ROOT/.venv/bin/activate"
# The build chain (ament/rosidl CMake modules) lives in the venv.
export AMENT_PREFIX_PATH="$VIRTUAL_ENV${AMENT_PREFIX_PATH:+:$AMENT_PREFIX_PATH}"
export CMAKE_PREFIX_PATH="$VIRTUAL_ENV${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}"
. "$SCENE_LLM_ROOT/install/local_setup.sh"
export PYTHONPATH="$SCENE_LLM_ROOT${PYTHONPATH:+:$PYTHONPATH}"
# Never reach for a model hub: checkpoints come from local paths.
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1
