#!/bin/sh
# Regenerates vmlinux/<arch>/vmlinux.h from the running kernel's BTF.
# Usage: scripts/gen-vmlinux.sh ARCH   (x86, arm64, ...; `make vmlinux` passes it)
# Environment: BTF (default /sys/kernel/btf/vmlinux), BPFTOOL (default bpftool),
# OUT_DIR (default vmlinux/ next to this script).
set -eu

if [ $# -ne 1 ] || [ -z "$1" ]; then
	echo "usage: $0 ARCH" >&2
	exit 2
fi
arch=$1
here=$(cd "$(dirname "$0")/.." && pwd)
btf=${BTF:-/sys/kernel/btf/vmlinux}
bpftool=${BPFTOOL:-bpftool}
out_dir=${OUT_DIR:-$here/vmlinux}/$arch
out=$out_dir/vmlinux.h

if [ ! -r "$btf" ]; then
	echo "gen-vmlinux.sh: $btf is not readable (kernel without CONFIG_DEBUG_INFO_BTF?)" >&2
	exit 1
fi
mkdir -p "$out_dir"
tmp=$(mktemp "$out_dir/.vmlinux.h.XXXXXX")
trap 'rm -f "$tmp"' EXIT INT TERM
"$bpftool" btf dump file "$btf" format c >"$tmp"
if [ ! -s "$tmp" ] || ! grep -q 'struct task_struct {' "$tmp"; then
	echo "gen-vmlinux.sh: bpftool produced no usable header from $btf" >&2
	exit 1
fi
chmod 0644 "$tmp"
mv -f "$tmp" "$out"
trap - EXIT INT TERM
echo "gen-vmlinux.sh: wrote $out from $btf (kernel $(uname -r), $(uname -m))" >&2
