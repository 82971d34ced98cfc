#!/usr/bin/env bash
# Set up scene_llm_ros from nothing on Debian 12 / Ubuntu, idempotently:
#   1. apt packages (runtime libraries of Open3D, a Java runtime for the caption metrics,
#      the compiler and CMake for the interface build),
#   2. a virtual environment in .venv with every Python package pinned in requirements.txt,
#   3. the msg/srv/action interfaces built by colcon into install/.
# Each step is skipped when its inputs have not changed since it last succeeded.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
stamps="$root/.venv/.setup"
start=$(date +%s)

log() { printf '[setup] %s\n' "$*"; }

pip_install() {
  # Some machines list package-index folders that do not exist; pip warns once per package.
  .venv/bin/python -m pip install -q --disable-pip-version-check "$@" 2>&1 \
    | { grep -v "is ignored: it is neither a file nor a directory" || true; }
}

digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

up_to_date() {  # up_to_date NAME DIGEST
  [ -f "$stamps/$1" ] && [ "$(cat "$stamps/$1")" = "$2" ]
}

mark_done() {  # mark_done NAME DIGEST
  mkdir -p "$stamps"
  printf '%s\n' "$2" > "$stamps/$1"
}

# 1. System packages ----------------------------------------------------------------------
apt_packages=(python3-venv python3-dev build-essential cmake git libusb-1.0-0 libgl1 libgomp1
              default-jre-headless)
missing=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  log "installing system packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" > /dev/null
fi

# 2. Python environment -------------------------------------------------------------------
python="${PYTHON:-python3}"
if ! "$python" -c 'import sys; assert sys.version_info[:2] == (3, 11)' 2>/dev/null; then
  echo "[setup] Python 3.11 is required (the ROS 2 Jazzy wheels are built for it);" \
       "set PYTHON=/path/to/python3.11" >&2
  exit 1
fi
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$python" -m venv .venv
fi
requirements_digest=$(digest requirements.txt pyproject.toml)
if ! up_to_date pip "$requirements_digest"; then
  log "installing pinned Python packages (requirements.txt)"
  pip_install -r requirements.txt
  pip_install --no-deps --no-build-isolation -e .
  mark_done pip "$requirements_digest"
fi

# 3. Interfaces ---------------------------------------------------------------------------
interface_digest=$(digest package.xml CMakeLists.txt msg/*.msg srv/*.srv action/*.action \
                   "$stamps/pip")
if ! up_to_date colcon "$interface_digest" || [ ! -f install/local_setup.sh ]; then
  log "building the ROS interfaces with colcon"
  (
    . .venv/bin/activate
    export AMENT_PREFIX_PATH="$VIRTUAL_ENV" CMAKE_PREFIX_PATH="$VIRTUAL_ENV"
    mkdir -p log
    colcon --log-base log build --merge-install \
      --cmake-args -DPython3_EXECUTABLE="$VIRTUAL_ENV/bin/python" > log/colcon-build.txt 2>&1 \
      || { tail -40 log/colcon-build.txt >&2; exit 1; }
  )
  mark_done colcon "$interface_digest"
fi

log "ready in $(( $(date +%s) - start )) s; use it with: . tools/env.sh"
