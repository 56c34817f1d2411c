// SPDX-License-Identifier: GPL-2.0
#include "core/kfeatures.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/bpf.h>

/* The typedef btf_trace_<tp> points to the tracepoint's prototype. */
static int tp_proto(const struct btf *btf, const char *tp, const struct btf_type **proto)
{
	char name[128];
	const struct btf_type *t;
	int id;

	snprintf(name, sizeof(name), "btf_trace_%s", tp);
	id = btf__find_by_name_kind(btf, name, BTF_KIND_TYPEDEF);
	if (id < 0)
		return id;
	t = btf__type_by_id(btf, (__u32)id);
	t = btf__type_by_id(btf, t->type); /* pointer */
	if (!t || !btf_is_ptr(t))
		return -EINVAL;
	t = btf__type_by_id(btf, t->type);
	if (!t || !btf_is_func_proto(t))
		return -EINVAL;
	*proto = t;
	return id;
}

int feature_tp_nargs(const char *tp_name)
{
	const struct btf_type *proto;
	struct btf *btf = btf__load_vmlinux_btf();
	int err;

	if (!btf)
		return -errno ? -errno : -ENOENT;
	err = tp_proto(btf, tp_name, &proto);
	if (err >= 0)
		err = btf_vlen(proto) - 1; /* the first parameter is the void *ctx */
	btf__free(btf);
	return err;
}

bool feature_tp_btf(void)
{
	struct bpf_insn insns[] = {
		{ .code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = BPF_REG_0, .imm = 0 },
		{ .code = BPF_JMP | BPF_EXIT },
	};
	LIBBPF_OPTS(bpf_prog_load_opts, opts, .expected_attach_type = BPF_TRACE_RAW_TP);
	const struct btf_type *proto;
	struct btf *btf = btf__load_vmlinux_btf();
	int id, fd, link;

	if (!btf)
		return false;
	id = tp_proto(btf, "sched_switch", &proto);
	btf__free(btf);
	if (id < 0)
		return false;
	opts.attach_btf_id = (__u32)id;
	fd = bpf_prog_load(BPF_PROG_TYPE_TRACING, "es_probe_btf", "GPL", insns, 2, &opts);
	if (fd < 0)
		return false;
	/* Loading is not enough on every kernel: attach too, then let go. */
	link = bpf_raw_tracepoint_open(NULL, fd);
	if (link >= 0)
		close(link);
	close(fd);
	return link >= 0;
}

bool feature_kfunc(const char *name)
{
	struct btf *btf = btf__load_vmlinux_btf();
	bool found;

	if (!btf)
		return false;
	found = btf__find_by_name_kind(btf, name, BTF_KIND_FUNC) > 0;
	btf__free(btf);
	return found;
}

bool feature_enum_value(const char *enum_name, const char *value)
{
	struct btf *btf = btf__load_vmlinux_btf();
	const struct btf_type *t;
	bool found = false;
	int id;

	if (!btf)
		return false;
	id = btf__find_by_name_kind(btf, enum_name, BTF_KIND_ENUM);
	t = id > 0 ? btf__type_by_id(btf, id) : NULL;
	for (int i = 0; t && i < btf_vlen(t) && !found; i++)
		found = !strcmp(btf__name_by_offset(btf, btf_enum(t)[i].name_off), value);
	btf__free(btf);
	return found;
}
