// SPDX-License-Identifier: GPL-2.0
/*
 * ELF symbols, segments and USDT notes. The files are untrusted: every
 * string in a note is checked to end inside it.
 */
#include "core/elfsym.h"

#include <errno.h>
#include <fcntl.h>
#include <gelf.h>
#include <string.h>
#include <unistd.h>

#define NT_STAPSDT 3

int elf_open_path(const char *path, int *fd, Elf **elf)
{
	int err;

	*fd = -1;
	*elf = NULL;
	if (elf_version(EV_CURRENT) == EV_NONE)
		return -EINVAL;
	*fd = open(path, O_RDONLY | O_CLOEXEC);
	if (*fd < 0)
		return -errno;
	*elf = elf_begin(*fd, ELF_C_READ_MMAP, NULL);
	if (!*elf || elf_kind(*elf) != ELF_K_ELF || gelf_getclass(*elf) != ELFCLASS64) {
		err = -ENOEXEC;
		goto fail;
	}
	return 0;
fail:
	elf_close_path(*fd, *elf);
	*fd = -1;
	*elf = NULL;
	return err;
}

void elf_close_path(int fd, Elf *elf)
{
	if (elf)
		elf_end(elf);
	if (fd >= 0)
		close(fd);
}

static uint64_t symbol_in(Elf *elf, Elf64_Word type, unsigned char stype, const char *name,
			  uint64_t *size)
{
	Elf_Scn *scn = NULL;

	while ((scn = elf_nextscn(elf, scn))) {
		Elf_Data *data;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh) || sh.sh_type != type || !sh.sh_entsize ||
		    !(data = elf_getdata(scn, NULL)))
			continue;
		for (size_t i = 0; i < sh.sh_size / sh.sh_entsize; i++) {
			const char *s;
			GElf_Sym sym;

			if (!gelf_getsym(data, (int)i, &sym) ||
			    GELF_ST_TYPE(sym.st_info) != stype || !sym.st_value ||
			    sym.st_shndx == SHN_UNDEF)
				continue;
			s = elf_strptr(elf, sh.sh_link, sym.st_name);
			if (s && !strcmp(s, name)) {
				if (size)
					*size = sym.st_size;
				return sym.st_value;
			}
		}
	}
	return 0;
}

uint64_t elf_symbol(Elf *elf, const char *name, uint64_t *size)
{
	uint64_t va = symbol_in(elf, SHT_DYNSYM, STT_OBJECT, name, size);

	return va ? va : symbol_in(elf, SHT_SYMTAB, STT_OBJECT, name, size);
}

uint64_t elf_function(Elf *elf, const char *name)
{
	uint64_t va = symbol_in(elf, SHT_DYNSYM, STT_FUNC, name, NULL);

	return va ? va : symbol_in(elf, SHT_SYMTAB, STT_FUNC, name, NULL);
}

int elf_va_to_off(Elf *elf, uint64_t va, uint64_t *off)
{
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return -EINVAL;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (!gelf_getphdr(elf, (int)i, &ph) || ph.p_type != PT_LOAD)
			continue;
		if (va >= ph.p_vaddr && va < ph.p_vaddr + ph.p_memsz) {
			*off = va - ph.p_vaddr + ph.p_offset;
			return 0;
		}
	}
	return -ENOENT;
}

uint64_t elf_exec_vaddr(Elf *elf)
{
	uint64_t lo = UINT64_MAX;
	size_t n;

	if (elf_getphdrnum(elf, &n))
		return 0;
	for (size_t i = 0; i < n; i++) {
		GElf_Phdr ph;

		if (gelf_getphdr(elf, (int)i, &ph) && ph.p_type == PT_LOAD && (ph.p_flags & PF_X) &&
		    ph.p_vaddr < lo)
			lo = ph.p_vaddr;
	}
	return lo == UINT64_MAX ? 0 : lo;
}

int stapsdt_begin(Elf *elf, struct stapsdt_iter *it)
{
	Elf_Scn *scn = NULL, *notes = NULL;
	size_t shstrndx;

	memset(it, 0, sizeof(*it));
	if (elf_getshdrstrndx(elf, &shstrndx))
		return -EINVAL;
	while ((scn = elf_nextscn(elf, scn))) {
		const char *name;
		GElf_Shdr sh;

		if (!gelf_getshdr(scn, &sh))
			continue;
		name = elf_strptr(elf, shstrndx, sh.sh_name);
		if (!name)
			continue;
		if (sh.sh_type == SHT_NOTE && !strcmp(name, ".note.stapsdt")) {
			notes = scn;
		} else if (!strcmp(name, ".stapsdt.base")) {
			it->base_sec = sh.sh_addr;
			it->have_base = true;
		}
	}
	if (!notes)
		return -ENOENT;
	it->data = elf_getdata(notes, NULL);
	if (!it->data || !it->data->d_buf)
		return -EINVAL;
	return 0;
}

int stapsdt_next(struct stapsdt_iter *it, struct stapsdt_note *note)
{
	size_t name_off, desc_off, next;
	GElf_Nhdr nh;

	if (!it->data)
		return 0;
	while ((next = gelf_getnote(it->data, it->off, &nh, &name_off, &desc_off)) > 0) {
		const char *desc = (const char *)it->data->d_buf + desc_off;
		size_t plen, rem;

		it->off = next;
		if (nh.n_type != NT_STAPSDT || nh.n_namesz != 8 ||
		    memcmp((const char *)it->data->d_buf + name_off, "stapsdt", 8) ||
		    nh.n_descsz < 27)
			continue;
		memcpy(&note->pc, desc, 8);
		memcpy(&note->base, desc + 8, 8);
		memcpy(&note->sema, desc + 16, 8);
		/* provider\0name\0args\0, each checked to end inside the note */
		note->provider = desc + 24;
		rem = nh.n_descsz - 24;
		plen = strnlen(note->provider, rem);
		if (plen + 1 >= rem)
			continue;
		note->name = note->provider + plen + 1;
		rem -= plen + 1;
		note->name_len = strnlen(note->name, rem);
		if (note->name_len >= rem)
			continue;
		note->args = note->name + note->name_len + 1;
		rem -= note->name_len + 1;
		note->args_len = strnlen(note->args, rem);
		/* Prelinked binaries: the notes hold link-time addresses. */
		if (it->have_base)
			note->pc += it->base_sec - note->base;
		return 1;
	}
	it->data = NULL;
	return 0;
}
