#!/bin/bash -e
# pi-gen: start this stage from the previous stage's rootfs (the usual prerun).
if [ ! -d "${ROOTFS_DIR}" ]; then
	copy_previous
fi
