#!/usr/bin/env bash
# Builds tf2_msgs (TFMessage, for /tf and /tf_static) into a venv that has the PyPI ROS wheels, which
# do not ship it. Idempotent: does nothing when tf2_msgs already imports with its type support.
# Needs cmake and a C/C++ compiler (scripts/install_system_deps.sh) and the rosidl generator wheels
# (requirements/base.txt). About 10 s on 2 cores.
#   scripts/build_tf2_msgs.sh [VENV]      (default .venv)
set -euo pipefail
venv=$(cd "${1:-.venv}" && pwd)
py="$venv/bin/python"
check='from tf2_msgs.msg import TFMessage; TFMessage.__class__.__import_type_support__()'
if "$py" -c "$check" 2>/dev/null; then
  exit 0
fi
here=$(cd "$(dirname "$0")" && pwd)
build=$(mktemp -d)
trap 'rm -rf "$build"' EXIT
export AMENT_PREFIX_PATH="$venv" PATH="$venv/bin:$PATH"
echo "building tf2_msgs into $venv"
cmake -S "$here/tf2_msgs" -B "$build" -DCMAKE_PREFIX_PATH="$venv" -DCMAKE_INSTALL_PREFIX="$venv" \
  -DPython3_EXECUTABLE="$py" -DBUILD_TESTING=OFF -DCMAKE_BUILD_TYPE=Release >"$build/configure.log" 2>&1 \
  || { tail -30 "$build/configure.log" >&2; exit 1; }
cmake --build "$build" -j"$(nproc)" >"$build/build.log" 2>&1 || { tail -30 "$build/build.log" >&2; exit 1; }
cmake --install "$build" >/dev/null
"$py" -c "$check"
