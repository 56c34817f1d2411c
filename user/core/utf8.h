/* SPDX-License-Identifier: GPL-2.0 */
/* UTF-8 validation shared by the exposition and JSON writers. */
#ifndef ERPSCOPE_UTF8_H
#define ERPSCOPE_UTF8_H

#include <stddef.h>

/*
 * Length of the well-formed UTF-8 sequence at s, of which n bytes may be
 * read (Unicode table 3-7: no overlongs, no surrogates, nothing above
 * U+10FFFF), or 0 with *bad set to the length of the maximal ill-formed
 * subpart, which a writer replaces with one U+FFFD.
 */
size_t utf8_seq(const unsigned char *s, size_t n, size_t *bad);

#endif
