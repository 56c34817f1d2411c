#!/bin/sh
# Installs the Debian 12 packages erpscope needs to build, run and test.
# libclang-rt-14-dev is only a Recommends of clang in Debian 12 and we do not
# install recommends, yet -fsanitize=fuzzer needs it.
# Idempotent: asks apt only when something is missing, and says nothing when
# everything is already there. Run as root.
set -eu

PKGS="make gcc clang llvm libbpf-dev bpftool libelf-dev zlib1g-dev libmicrohttpd-dev
libclang-rt-14-dev pkg-config postgresql postgresql-contrib python3.11 python3-setproctitle
python3-psycopg2 python3-werkzeug python3-gevent python3-yaml prometheus prometheus-alertmanager libbpf-tools bpftrace linux-perf
iproute2 procps util-linux strace libyaml-dev libgnutls28-dev libcrypt-dev openssl curl protobuf-compiler"
# bpf/pg.bpf.c includes libbpf's usdt.bpf.h, which includes <asm/errno.h>:
# clang -target bpf does not search the multiarch include directory, and
# gcc-multilib provides the /usr/include/asm link (amd64 only).
[ "$(dpkg --print-architecture 2>/dev/null)" = amd64 ] && PKGS="$PKGS gcc-multilib"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${db:Status-Status}' "$p" 2>/dev/null || true)
	[ "$st" = "installed" ] || missing="$missing $p"
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps.sh: missing packages:$missing; run as root to install them" >&2
	exit 1
fi

echo "deps.sh: installing:$missing" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing >/dev/null
