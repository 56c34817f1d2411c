// SPDX-License-Identifier: GPL-2.0
/*
 * bpf_floor OBJECT: loads and attaches every program of OBJECT (the bench's
 * scripts/bpf_floor.bpf.c), prints "<prog id> <name>" for each, then
 * "ready", and keeps them attached until its standard input closes.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#define MAX_LINKS 16

static int prog_id(const struct bpf_program *p, __u32 *id)
{
	struct bpf_prog_info info = {};
	__u32 len = sizeof(info);
	int err;

	err = bpf_obj_get_info_by_fd(bpf_program__fd(p), &info, &len);
	if (err)
		return -errno;
	*id = info.id;
	return 0;
}

int main(int argc, char **argv)
{
	struct bpf_link *links[MAX_LINKS];
	struct bpf_object *obj;
	struct bpf_program *p;
	int n = 0, err = 0;
	char buf[256];
	__u32 id = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: bpf_floor OBJECT\n");
		return 2;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		err = -errno;
		fprintf(stderr, "bpf_floor: open %s: %s\n", argv[1], strerror(-err));
		return 1;
	}
	err = bpf_object__load(obj);
	if (err) {
		fprintf(stderr, "bpf_floor: load %s: %s\n", argv[1], strerror(-err));
		goto out;
	}
	bpf_object__for_each_program(p, obj) {
		if (n == MAX_LINKS) {
			err = -E2BIG;
			fprintf(stderr, "bpf_floor: more than %d programs\n", MAX_LINKS);
			goto out;
		}
		links[n] = bpf_program__attach(p);
		if (!links[n]) {
			err = -errno;
			fprintf(stderr, "bpf_floor: attach %s: %s\n", bpf_program__name(p),
				strerror(-err));
			goto out;
		}
		n++;
		err = prog_id(p, &id);
		if (err)
			goto out;
		printf("%u %s\n", id, bpf_program__name(p));
	}
	printf("ready\n");
	fflush(stdout);
	while (read(0, buf, sizeof(buf)) > 0)
		;
out:
	while (n > 0)
		bpf_link__destroy(links[--n]);
	bpf_object__close(obj);
	return err ? 1 : 0;
}
