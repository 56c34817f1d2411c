/* SPDX-License-Identifier: GPL-2.0 */
/*
 * ELF files read with libelf: open a 64-bit ELF file, find a data or function symbol,
 * map a link-time address to a file offset, and walk the SystemTap SDT
 * notes (.note.stapsdt) that describe USDT probes.
 */
#ifndef ERPSCOPE_ELFSYM_H
#define ERPSCOPE_ELFSYM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <libelf.h>

/*
 * Opens path as a 64-bit ELF file. Returns 0 with *fd and *elf set (release
 * with elf_close_path), or -errno: -ENOEXEC when it is not one.
 */
int elf_open_path(const char *path, int *fd, Elf **elf);
void elf_close_path(int fd, Elf *elf);

/*
 * Link-time address of the defined data symbol (STT_OBJECT) name, looked
 * up in .dynsym first, then .symtab; 0: none. *size (may be NULL) gets its
 * st_size.
 */
uint64_t elf_symbol(Elf *elf, const char *name, uint64_t *size);

/* Link-time address of the defined function (STT_FUNC) name, likewise; 0: none. */
uint64_t elf_function(Elf *elf, const char *name);

/* File offset of link-time address va, from the PT_LOAD segment holding it. */
int elf_va_to_off(Elf *elf, uint64_t va, uint64_t *off);

/*
 * The lowest link-time address of an executable PT_LOAD segment, 0 if none:
 * what Linux adds the load bias to for mm->start_code, so a program's load
 * bias is start_code minus this.
 */
uint64_t elf_exec_vaddr(Elf *elf);

/* One USDT probe site. The strings point into the ELF file's data. */
struct stapsdt_note {
	const char *provider; /* NUL-terminated */
	const char *name; /* NUL-terminated, name_len bytes */
	const char *args; /* argument specs, args_len bytes, maybe not terminated */
	size_t name_len, args_len;
	uint64_t pc; /* link-time address of the site, corrected for prelinking */
	uint64_t base; /* the .stapsdt.base address the note was written with */
	uint64_t sema; /* link-time address of its semaphore, 0: none */
};

struct stapsdt_iter {
	Elf_Data *data;
	size_t off;
	uint64_t base_sec; /* where .stapsdt.base really is */
	bool have_base;
};

/*
 * Starts a walk of elf's .note.stapsdt. Returns 0, -ENOENT when there is
 * no such section, -EINVAL when the file's sections cannot be read.
 */
int stapsdt_begin(Elf *elf, struct stapsdt_iter *it);

/* The next well-formed note: 1, or 0 at the end. */
int stapsdt_next(struct stapsdt_iter *it, struct stapsdt_note *note);

#endif
