#!/usr/bin/env bash
# Installs the Debian/Ubuntu packages the Python wheels need, only those that are missing.
#   libusb-1.0-0        pyrealsense2 links against it
#   cyclonedds-dev      the G1 DDS layer (cyclonedds==0.10.2 is built against it); -tools has idlc
#   libgl1 libegl1 libglib2.0-0 libosmesa6   OpenCV and MuJoCo offscreen rendering on the CPU
#   cmake g++           scripts/build_tf2_msgs.sh builds tf2_msgs (the PyPI ROS wheels lack it)
set -euo pipefail
packages=(libusb-1.0-0 cyclonedds-dev cyclonedds-tools libgl1 libegl1 libglib2.0-0 libosmesa6 cmake g++)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
echo "installing system packages: ${missing[*]}"
if ! command -v apt-get >/dev/null; then
  echo "error: apt-get not found; install these packages with your package manager: ${missing[*]}" >&2
  exit 1
fi
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
