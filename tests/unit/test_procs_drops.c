// SPDX-License-Identifier: GPL-2.0
/* Lost lifecycle events (a full procs ring) make the next tick rescan /proc. */
#include <stdint.h>

#include "check.h"
#include "procs/proctable.h"

#define HOUR_MS (3600 * 1000u)

int main(void)
{
	struct procs *p = procs_new(512);

	CHECK(p != NULL);
	if (!p)
		return 1;
	/* The first tick scans; then nothing is due for an hour. */
	procs_tick(p, 1000, HOUR_MS);
	CHECK(!procs_rescan_due(p));
	CHECK(!procs_note_drops(p, 0));
	CHECK(!procs_rescan_due(p));

	/* Drops rose: due at once, and the next tick scans and clears it. */
	CHECK(procs_note_drops(p, 3));
	CHECK(procs_rescan_due(p));
	procs_tick(p, 1100, HOUR_MS);
	CHECK(!procs_rescan_due(p));

	/* The same count again is nothing new; a rise is. */
	CHECK(!procs_note_drops(p, 3));
	CHECK(!procs_rescan_due(p));
	CHECK(procs_note_drops(p, 4));
	CHECK(procs_rescan_due(p));
	procs_tick(p, 1200, HOUR_MS);
	CHECK(!procs_rescan_due(p));

	procs_free(p);
	return check_summary("test_procs_drops");
}
