// SPDX-License-Identifier: GPL-2.0
/* core/worker_note.c: what each worker serves, kept for its exit events. */
#include <errno.h>
#include <string.h>

#include "check.h"
#include "core/json.h"
#include "core/worker_note.h"

static void test_set_get_clear(void)
{
	struct worker_notes *wn = worker_notes_new(4);
	struct worker_note n;

	CHECK(wn != NULL);
	CHECK_INT(worker_note_get(wn, 10, &n), 0);
	CHECK_INT(worker_note_set(wn, 10, 1, 500, "/web/dataset/call_kw", "", ""), 0);
	/* the RPC found later: the same note, updated */
	CHECK_INT(worker_note_set(wn, 10, 1, 500, "/web/dataset/call_kw", "sale.order", "write"),
		  0);
	CHECK_INT(worker_notes_count(wn), 1);
	CHECK_INT(worker_note_get(wn, 10, &n), 1);
	CHECK_STR(n.route, "/web/dataset/call_kw");
	CHECK_STR(n.model, "sale.order");
	CHECK_STR(n.method, "write");
	/* a threaded worker: two requests; the oldest in progress is the answer */
	CHECK_INT(worker_note_set(wn, 10, 2, 100, "/old", "", ""), 0);
	CHECK_INT(worker_note_get(wn, 10, &n), 2);
	CHECK_STR(n.route, "/old");
	worker_note_clear(wn, 10, 2);
	CHECK_INT(worker_note_get(wn, 10, &n), 1);
	CHECK_STR(n.route, "/web/dataset/call_kw");
	/* another pid in the same bucket chain stays apart */
	CHECK_INT(worker_note_set(wn, 10 + 1024, 1, 1, "/other", "", ""), 0);
	CHECK_INT(worker_note_get(wn, 10, &n), 1);
	CHECK_INT(worker_note_get(wn, 10 + 1024, &n), 1);
	CHECK_STR(n.route, "/other");
	/* full: -ENOSPC, nothing else disturbed */
	CHECK_INT(worker_note_set(wn, 11, 1, 1, "/a", "", ""), 0);
	CHECK_INT(worker_note_set(wn, 12, 1, 1, "/b", "", ""), 0);
	CHECK_INT(worker_note_set(wn, 13, 1, 1, "/c", "", ""), -ENOSPC);
	CHECK_INT(worker_notes_count(wn), 4);
	worker_note_clear(wn, 12, 1);
	worker_note_clear(wn, 12, 1); /* twice: nothing */
	CHECK_INT(worker_note_set(wn, 13, 1, 1, "/c", "", ""), 0);
	/* a long value is cut, NUL-terminated */
	{
		char big[300];

		memset(big, 'x', sizeof(big) - 1);
		big[sizeof(big) - 1] = 0;
		CHECK_INT(worker_note_set(wn, 13, 1, 1, big, big, big), 0);
		CHECK_INT(worker_note_get(wn, 13, &n), 1);
		CHECK_INT(strlen(n.route), WORKER_NOTE_FIELD - 1);
	}
	worker_notes_free(wn);
	/* no registry: every call is a no-op */
	CHECK_INT(worker_note_set(NULL, 1, 1, 1, "/", "", ""), 0);
	CHECK_INT(worker_note_get(NULL, 1, &n), 0);
	worker_note_clear(NULL, 1, 1);
	worker_note_died(NULL, 1, 1, 1);
	worker_notes_expire(NULL, 1);
}

static void test_died_lingers(void)
{
	struct worker_notes *wn = worker_notes_new(8);
	struct worker_note n;

	CHECK_INT(worker_note_set(wn, 20, 7, 100, "/web/dataset/call_kw", "stock.picking", "nap"),
		  0);
	worker_note_died(wn, 20, 7, 5000);
	/* the exit event, read after the request was counted killed, still names it */
	CHECK_INT(worker_note_get(wn, 20, &n), 1);
	CHECK_STR(n.model, "stock.picking");
	CHECK_INT(n.died_ms, 5000);
	worker_notes_expire(wn, 5000 + WORKER_NOTE_LINGER_MS - 1);
	CHECK_INT(worker_note_get(wn, 20, &n), 1);
	/* a new process with the pid: its live note wins over the dead one's */
	CHECK_INT(worker_note_set(wn, 20, 8, 900, "/new", "", ""), 0);
	CHECK_INT(worker_note_get(wn, 20, &n), 2);
	CHECK_STR(n.route, "/new");
	worker_notes_expire(wn, 5000 + WORKER_NOTE_LINGER_MS);
	CHECK_INT(worker_notes_count(wn), 1);
	CHECK_INT(worker_note_get(wn, 20, &n), 1);
	CHECK_STR(n.route, "/new");
	/* set again on a dead note revives it */
	worker_note_died(wn, 20, 8, 10);
	CHECK_INT(worker_note_set(wn, 20, 8, 900, "/new", "", ""), 0);
	worker_notes_expire(wn, 10 + WORKER_NOTE_LINGER_MS);
	CHECK_INT(worker_notes_count(wn), 1);
	worker_notes_free(wn);
}

static void test_json(void)
{
	struct worker_notes *wn = worker_notes_new(8);
	struct json j;

	CHECK_INT(worker_note_set(wn, 30, 1, 1, "/web/x\"y", "res.partner", "read"), 0);
	json_init(&j);
	json_object_begin(&j, NULL);
	worker_note_json(wn, 30, &j);
	json_object_end(&j);
	CHECK_INT(json_finish(&j), 0);
	CHECK_STR(j.buf,
		  "{\"route\":\"/web/x\\\"y\",\"model\":\"res.partner\",\"method\":\"read\"}");
	json_free(&j);
	json_init(&j);
	json_object_begin(&j, NULL);
	worker_note_json(wn, 31, &j);
	json_object_end(&j);
	CHECK_INT(json_finish(&j), 0);
	CHECK_STR(j.buf, "{\"route\":null,\"model\":null,\"method\":null}");
	json_free(&j);
	worker_notes_free(wn);
}

int main(void)
{
	test_set_get_clear();
	test_died_lingers();
	test_json();
	return check_summary("test_worker_note");
}
