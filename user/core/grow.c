// SPDX-License-Identifier: GPL-2.0
#include "core/grow.h"

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

int grow_array(void *arrp, size_t *cap, size_t need, size_t elem_size, size_t first)
{
	size_t ncap = *cap ? *cap : first;
	void *old, *p;

	if (need <= *cap)
		return 0;
	if (!elem_size || !first)
		return -EINVAL;
	while (ncap < need) {
		if (ncap > SIZE_MAX / 2)
			return -ENOMEM;
		ncap *= 2;
	}
	if (ncap > SIZE_MAX / elem_size)
		return -ENOMEM;
	/* arrp points at a T *, whatever T is: move the pointer as bytes */
	memcpy(&old, arrp, sizeof(old));
	p = realloc(old, ncap * elem_size);
	if (!p)
		return -ENOMEM;
	memcpy(arrp, &p, sizeof(p));
	*cap = ncap;
	return 0;
}
