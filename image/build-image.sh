#!/usr/bin/env bash
# Build a Raspberry Pi OS Lite image with voicepi installed and enabled, with pi-gen.
#
#   image/build-image.sh                       # 64-bit (Pi 3/4/5, Zero 2 W), bookworm, docker
#   image/build-image.sh --release trixie --native
#
# The image lands in WORKDIR/pi-gen/deploy/ (image_*-voicepi.img.xz). It has no API key
# (every card would share it): after the first boot run
#   sudo /opt/voicepi/src/image/install.sh --key-stdin < keyfile
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO_DIR=$(dirname "$SCRIPT_DIR")
PIGEN_URL=${PIGEN_URL:-https://github.com/RPi-Distro/pi-gen.git}

arch=arm64
release=bookworm
workdir=$REPO_DIR/.cache/pi-gen-build
mode=docker

die() {
	printf 'voicepi-image: error: %s\n' "$*" >&2
	exit 1
}

while [ $# -gt 0 ]; do
	case "$1" in
	--arch)
		arch=${2:?--arch needs arm64}
		shift
		;;
	--release)
		release=${2:?--release needs bookworm or trixie}
		shift
		;;
	--workdir)
		workdir=${2:?--workdir needs a directory}
		shift
		;;
	--native) mode=native ;;
	--docker) mode=docker ;;
	-h | --help)
		sed -n '2,10p' "$0"
		echo "Options: --arch arm64  --release bookworm|trixie  --workdir DIR  --docker|--native"
		echo "Environment: FIRST_USER_NAME, FIRST_USER_PASS, WPA_COUNTRY, TARGET_HOSTNAME, ENABLE_SSH"
		exit 0
		;;
	*) die "unknown option: $1" ;;
	esac
	shift
done
# 64-bit only: numpy and pyopen-wakeword have no 32-bit ARM wheels (install.sh refuses armhf).
case "$arch" in arm64) branch=arm64 ;; *) die "--arch: only arm64 (voicepi needs a 64-bit OS)" ;; esac
case "$release" in bookworm | trixie) ;; *) die "--release: bookworm or trixie" ;; esac

mkdir -p "$workdir"
pigen=$workdir/pi-gen
if [ ! -d "$pigen/.git" ]; then
	git clone --depth 1 --branch "$branch" "$PIGEN_URL" "$pigen"
fi

# The stage, with this checkout as its files/ (pi-gen runs the stage from its own tree).
stage=$pigen/stage-voicepi
rm -rf "$stage"
cp -a "$SCRIPT_DIR/pi-gen/stage-voicepi" "$stage"
files=$stage/00-install-voicepi/files/voicepi
mkdir -p "$files"
tar -C "$REPO_DIR" --exclude=./.git --exclude=./.venv --exclude=./.cache \
	--exclude=__pycache__ --exclude='*.egg-info' --exclude=./.mypy_cache \
	--exclude=./.ruff_cache --exclude=./.pytest_cache -cf - . | tar -C "$files" -xf -
# Only the voicepi image, not also the plain Lite one stage2 would export.
touch "$pigen/stage2/SKIP_IMAGES"

cat >"$pigen/config" <<CONFIG
IMG_NAME=voicepi
RELEASE=$release
STAGE_LIST="stage0 stage1 stage2 stage-voicepi"
TARGET_HOSTNAME=${TARGET_HOSTNAME:-voicepi}
FIRST_USER_NAME=${FIRST_USER_NAME:-pi}
${FIRST_USER_PASS:+FIRST_USER_PASS=$FIRST_USER_PASS}
${WPA_COUNTRY:+WPA_COUNTRY=$WPA_COUNTRY}
ENABLE_SSH=${ENABLE_SSH:-1}
DEPLOY_COMPRESSION=xz
CONFIG

cd "$pigen"
if [ "$mode" = docker ]; then
	./build-docker.sh
else
	[ "$(id -u)" -eq 0 ] || die "--native builds need root (sudo)"
	./build.sh
fi
ls -l "$pigen/deploy"
