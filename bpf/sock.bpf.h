/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Sockets as the kernel holds them: constants from stable uapi headers and
 * the socket behind a file descriptor of the current task. Shared by the
 * tcp and pg probes.
 */
#ifndef ERPSCOPE_SOCK_BPF_H
#define ERPSCOPE_SOCK_BPF_H

/* include/linux/socket.h, include/uapi/linux/in.h, net/tcp_states.h: stable. */
#define ES_AF_UNIX 1
#define ES_AF_INET 2
#define ES_AF_INET6 10
#define ES_IPPROTO_TCP 6
#define ES_SOCK_STREAM 1
#define ES_TCP_ESTABLISHED 1
#define ES_TCP_SYN_SENT 2
#define ES_TCP_SYN_RECV 3
#define ES_TCP_CLOSE 7
#define ES_TCP_CLOSE_WAIT 8
#define ES_TCP_LISTEN 10
#define ES_S_IFMT 0170000
#define ES_S_IFSOCK 0140000

/* The socket behind fd in the current task's file table, or NULL. */
static __always_inline struct sock *fd_sock(__u32 fd)
{
	struct task_struct *t = (struct task_struct *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(t, files, fdt);
	struct file **fds, *f = NULL;
	struct socket *so;

	if (!fdt || fd >= BPF_CORE_READ(fdt, max_fds))
		return NULL;
	fds = BPF_CORE_READ(fdt, fd);
	if (bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]) || !f)
		return NULL;
	if ((BPF_CORE_READ(f, f_inode, i_mode) & ES_S_IFMT) != ES_S_IFSOCK)
		return NULL;
	so = BPF_CORE_READ(f, private_data);
	return so ? BPF_CORE_READ(so, sk) : NULL;
}

/* v6.2: makes a kernel address a pointer the program may load through. */
extern void *bpf_rdonly_cast(const void *obj, __u32 btf_id) __ksym;

/*
 * The socket behind fd in the current task's file table, or NULL. Walked
 * with loads the verifier turns into fault-safe ones (task BTF pointer,
 * bpf_rdonly_cast), not a helper call per field: this runs on a worker's
 * socket calls (in a loop, it costs the verifier more states: fd_sock()
 * there). Only the descriptor array, reached through a plain
 * pointer-to-pointer, is read with a helper. The sock returned may be
 * loaded through as well.
 */
static __always_inline struct sock *fd_sock_direct(__u32 fd)
{
	struct task_struct *t = bpf_get_current_task_btf();
	struct fdtable *fdt = t->files->fdt;
	struct file *f = NULL;
	struct socket *so;

	if (!fdt || fd >= fdt->max_fds)
		return NULL;
	if (bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]) || !f)
		return NULL;
	f = bpf_rdonly_cast(f, bpf_core_type_id_kernel(struct file));
	if ((f->f_inode->i_mode & ES_S_IFMT) != ES_S_IFSOCK)
		return NULL;
	so = bpf_rdonly_cast(f->private_data, bpf_core_type_id_kernel(struct socket));
	return so ? so->sk : NULL;
}

/*
 * The inode number of sk's socket ("socket:[ino]" in /proc/<pid>/fd), 0
 * when it has none (an orphan, a time-wait socket): what tells two
 * connections on one descriptor number apart, where the struct sock's
 * address does not (the slab gives a freed one back at once). The socket
 * and its inode are one allocation (struct socket_alloc): two loads.
 */
static __always_inline __u64 sock_ino(struct sock *sk)
{
	struct socket_alloc *a;

	if (!sk || !sk->sk_socket)
		return 0;
	a = bpf_rdonly_cast(sk->sk_socket, bpf_core_type_id_kernel(struct socket_alloc));
	return a->vfs_inode.i_ino;
}

#endif
