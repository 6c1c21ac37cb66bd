#!/bin/bash -e
# pi-gen: copy voicepi into the image and run its installer in the chroot.
# files/voicepi is the voicepi checkout; image/build-image.sh puts it there.
[ -f files/voicepi/image/install.sh ] || {
	echo "stage-voicepi: files/voicepi is missing; build with image/build-image.sh" >&2
	exit 1
}

rm -rf "${ROOTFS_DIR}/opt/voicepi/src"
install -d "${ROOTFS_DIR}/opt/voicepi/src"
cp -a files/voicepi/. "${ROOTFS_DIR}/opt/voicepi/src/"

# No key in an image (every card would share it) and no systemd to start anything in a
# chroot: the unit is enabled and starts on first boot. The Debian packages are already
# there (00-packages); pip fetches the Python ones.
on_chroot <<CHROOT
/opt/voicepi/src/image/install.sh --no-start --no-key --no-apt
CHROOT
