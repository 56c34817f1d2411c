#!/bin/sh
# Mounts tracefs at /sys/kernel/tracing and bpffs at /sys/fs/bpf when they are
# not mounted yet. Idempotent; quiet when both are there. Run as root.
# (debugfs is not needed: tracefs has everything erpscope reads.)
set -eu

is_mounted() { # $1 = mount point, $2 = fs type
	awk -v mp="$1" -v t="$2" '$2 == mp && $3 == t { found = 1 } END { exit !found }' /proc/mounts
}

mount_one() { # $1 = fs type, $2 = mount point
	is_mounted "$2" "$1" && return 0
	if [ "$(id -u)" != 0 ]; then
		echo "mounts.sh: $1 is not mounted at $2 and we are not root" >&2
		return 1
	fi
	mkdir -p "$2" 2>/dev/null || true
	mount -t "$1" "$1" "$2"
	echo "mounts.sh: mounted $1 at $2" >&2
}

mount_one tracefs /sys/kernel/tracing
mount_one bpf /sys/fs/bpf
