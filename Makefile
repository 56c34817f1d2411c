# erpscope: `make help` lists the targets.
ARCH ?= $(shell uname -m | sed -e 's/x86_64/x86/' -e 's/aarch64/arm64/')
BUILD ?= build
CLANG ?= clang
BPFTOOL ?= bpftool
LLVM_STRIP ?= llvm-strip
CC ?= cc
PKG_CONFIG ?= pkg-config
PREFIX ?= /usr/local
# monitoring/ (rules, alerts, runbooks, dashboards) goes to $(SHAREDIR)/monitoring.
SHAREDIR ?= /usr/share/erpscope
MONITORING := $(shell find monitoring -type f -not -name '*.pyc' 2>/dev/null | sort)
PKGS := libbpf libelf zlib libmicrohttpd yaml-0.1 gnutls

CFLAGS ?= -O2 -g
CFLAGS += -std=gnu11 -Wall -Wextra -Wno-unused-parameter -Wno-format-zero-length -MMD -MP -I$(BUILD) \
	  -D_GNU_SOURCE $(shell $(PKG_CONFIG) --cflags $(PKGS) 2>/dev/null)
LDLIBS += $(shell $(PKG_CONFIG) --libs $(PKGS) 2>/dev/null) -lcrypt
BPF_CFLAGS := -g -O2 -target bpf -D__TARGET_ARCH_$(ARCH) -Ivmlinux/$(ARCH) -MMD -MP \
	      -idirafter /usr/include/$(shell $(CC) -print-multiarch 2>/dev/null) \
	      -Wall -Wno-unused-function

BPF_SRCS := $(wildcard bpf/*.bpf.c)
BPF_OBJS := $(patsubst bpf/%.bpf.c,$(BUILD)/bpf/%.bpf.o,$(BPF_SRCS))
SKELS := $(patsubst bpf/%.bpf.c,$(BUILD)/%.skel.h,$(BPF_SRCS))
USER_SRCS := $(wildcard user/*/*.c)
USER_OBJS := $(patsubst user/%.c,$(BUILD)/user/%.o,$(USER_SRCS))
LIB_OBJS := $(filter-out $(BUILD)/user/daemon/main.o,$(USER_OBJS))
UNIT_SRCS := $(wildcard tests/unit/test_*.c)
UNIT_BINS := $(patsubst tests/unit/%.c,$(BUILD)/tests/%,$(UNIT_SRCS))
FUZZ_SRCS := $(wildcard tests/fuzz/fuzz_*.c)
FUZZ_BINS := $(patsubst tests/fuzz/%.c,$(BUILD)/fuzz/%,$(FUZZ_SRCS))
# The parsers of outside input, built with sanitizers for the fuzzers.
FUZZ_UNITS := user/procs/title.c user/core/config.c user/core/pycapture.c user/core/log.c user/core/negotiate.c user/core/expo.c user/core/http_parse.c user/core/json.c user/core/events.c user/core/http.c user/core/web_guard.c user/host/host.c user/host/netfs.c user/core/readfile.c user/core/utf8.c user/pg/pg_normalize.c user/pg/pg_conf.c user/tcp/tcp_diag.c user/requests/req_parse.c user/gpu/drm_fdinfo.c \
	user/core/webconfig.c user/core/webtls.c user/core/webauth.c user/core/webload.c user/core/web.c \
	user/core/webaccess.c user/core/grow.c

.PHONY: all help deps vmlinux run check test unit-test fuzz fuzz-smoke integration-test \
	bench install uninstall deb format clean

all: $(BUILD)/erpscope ## Build the daemon (build/erpscope)

help: ## List the targets
	@grep -h -E '^[a-z-]+:.*## ' Makefile | sed -e 's/:.*## /\t/' | expand -t 20

deps: ## Install the Debian packages the build, run and tests need
	@scripts/deps.sh

vmlinux: ## Regenerate vmlinux/<arch>/vmlinux.h from the running kernel's BTF
	@scripts/gen-vmlinux.sh $(ARCH)

$(BUILD)/bpf $(BUILD)/tests $(BUILD)/fuzz:
	@mkdir -p $@

# The skeleton embeds the object in the daemon: its DWARF (BTF stays) would
# be 5 MiB of .rodata that libbpf never reads but part of which is paged in.
$(BUILD)/bpf/%.bpf.o: bpf/%.bpf.c vmlinux/$(ARCH)/vmlinux.h | $(BUILD)/bpf
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@
	$(LLVM_STRIP) -g $@

$(BUILD)/%.skel.h: $(BUILD)/bpf/%.bpf.o
	$(BPFTOOL) gen skeleton $< name $*_bpf > $@.tmp && mv $@.tmp $@

# Skeletons first: after the first build -MMD records who includes which.
# user/<capability>/ files include each other as "<capability>/name.h".
$(BUILD)/user/%.o: user/%.c | $(SKELS)
	@mkdir -p $(@D)
	$(CC) $(CFLAGS) -iquote user -c $< -o $@

$(BUILD)/erpscope: $(USER_OBJS)
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

$(BUILD)/liberpscope.a: $(LIB_OBJS)
	$(AR) rcs $@ $^

$(BUILD)/tests/%: tests/unit/%.c $(BUILD)/liberpscope.a | $(BUILD)/tests
	$(CC) $(CFLAGS) -iquote user -o $@ $< $(BUILD)/liberpscope.a $(LDLIBS)

$(BUILD)/fuzz/%: tests/fuzz/%.c $(FUZZ_UNITS) | $(BUILD)/fuzz
	$(CLANG) -g -O1 -std=gnu11 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined \
		-iquote user -I$(BUILD) -o $@ $^ $(LDLIBS)

run: deps all ## Install what is missing, build, and run the daemon in the foreground
	@scripts/mounts.sh
	exec $(BUILD)/erpscope $(ARGS)

check: all ## Load and attach every probe, then exit (needs root)
	$(BUILD)/erpscope --check --strict

# The fake NVIDIA management library the gpu tests and bench run the daemon
# against (tests/fake/fake_nvml.c); never part of the daemon's build.
$(BUILD)/tests/libnvidia-ml.so.1: tests/fake/fake_nvml.c | $(BUILD)/tests
	$(CC) -shared -fPIC -O2 -Wall -o $@ $<

unit-test: $(UNIT_BINS) $(BUILD)/tests/libnvidia-ml.so.1 ## Unit tests (no privileges)
	@fail=0; for t in $(UNIT_BINS); do $$t || fail=1; done; exit $$fail

fuzz: $(FUZZ_BINS) ## Build the libFuzzer targets (build/fuzz/)

fuzz-smoke: $(FUZZ_BINS) ## Run each fuzzer briefly over its seed corpus
	@scripts/fuzz-smoke.sh $(FUZZ_BINS)

integration-test: all ## Integration tests (root, real BPF, real PostgreSQL)
	@tests/integration/run.sh

# Like run, test must work alone on a fresh machine: the build needs the
# packages and the integration tests need tracefs and bpffs. Sequential in the
# recipe, not prerequisites, so that -j cannot build before deps.sh is done.
test: ## Install what is missing, mount, then unit tests, fuzz smoke, integration tests
	@scripts/deps.sh
	@scripts/mounts.sh
	@tests/run-all.sh

# The bench's BPF floor (scripts/bpf_floor*.c): programs that do nothing on
# the requests probe's tracepoints and their loader; never part of the daemon.
$(BUILD)/bench:
	@mkdir -p $@

$(BUILD)/bench/bpf_floor.bpf.o: scripts/bpf_floor.bpf.c vmlinux/$(ARCH)/vmlinux.h | $(BUILD)/bench
	$(CLANG) $(BPF_CFLAGS) -c $< -o $@

$(BUILD)/bench/bpf_floor: scripts/bpf_floor.c | $(BUILD)/bench
	$(CC) $(CFLAGS) -o $@ $< $(LDLIBS)

bench: all $(BUILD)/bench/bpf_floor $(BUILD)/bench/bpf_floor.bpf.o ## Measure per-event cost and overhead (not a test)
	@scripts/bench.sh

install: all ## Install the daemon, its systemd unit, and monitoring/ under /usr/share/erpscope
	install -D -m 0755 $(BUILD)/erpscope $(DESTDIR)$(PREFIX)/sbin/erpscope
	install -D -m 0644 scripts/erpscope.service $(DESTDIR)/etc/systemd/system/erpscope.service
	for f in $(MONITORING); do install -D -m 0644 $$f $(DESTDIR)$(SHAREDIR)/$$f || exit 1; done

DEB_VERSION := $(shell sed -n 's/^\#define ERPSCOPE_VERSION "\(.*\)"/\1/p' user/core/erpscope.h)
DEB_ARCH := $(shell dpkg --print-architecture 2>/dev/null || echo amd64)
deb: all ## Build a Debian package (build/erpscope_<version>_<arch>.deb)
	rm -rf $(BUILD)/deb && mkdir -p $(BUILD)/deb/DEBIAN
	install -D -m 0755 $(BUILD)/erpscope $(BUILD)/deb/usr/sbin/erpscope
	sed 's|/usr/local/sbin/erpscope|/usr/sbin/erpscope|; s|/usr/local/share/doc|/usr/share/doc|' \
		scripts/erpscope.service > $(BUILD)/erpscope.service.deb
	install -D -m 0644 $(BUILD)/erpscope.service.deb $(BUILD)/deb/lib/systemd/system/erpscope.service
	install -D -m 0644 README.md $(BUILD)/deb/usr/share/doc/erpscope/README.md
	for f in $(MONITORING); do install -D -m 0644 $$f $(BUILD)/deb/usr/share/erpscope/$$f || exit 1; done
	printf '%s\n' 'Package: erpscope' 'Version: $(DEB_VERSION)' 'Architecture: $(DEB_ARCH)' \
		'Maintainer: erpscope developers <dev@erpscope.invalid>' 'Section: admin' 'Priority: optional' \
		'Depends: libbpf1, libelf1, zlib1g, libmicrohttpd12, libyaml-0-2, libgnutls30, libcrypt1' \
		'Description: eBPF profiler for Odoo, PostgreSQL and Python hosts' \
		' Per-worker CPU, off-CPU and runqueue latency as Prometheus metrics.' \
		> $(BUILD)/deb/DEBIAN/control
	dpkg-deb --root-owner-group --build $(BUILD)/deb $(BUILD)/erpscope_$(DEB_VERSION)_$(DEB_ARCH).deb

uninstall: ## Remove what install put in place
	rm -f $(DESTDIR)$(PREFIX)/sbin/erpscope $(DESTDIR)/etc/systemd/system/erpscope.service
	rm -rf $(DESTDIR)$(SHAREDIR)/monitoring
	-rmdir $(DESTDIR)$(SHAREDIR) 2>/dev/null

format: ## Reformat C sources with the kernel's clang-format style
	clang-format -i bpf/*.c bpf/*.h user/*/*.c user/*/*.h tests/unit/*.c tests/fuzz/*.c

clean: ## Remove build outputs
	rm -rf $(BUILD)

-include $(wildcard $(BUILD)/bpf/*.d $(BUILD)/user/*/*.d $(BUILD)/tests/*.d $(BUILD)/bench/*.d)
