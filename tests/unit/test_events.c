// SPDX-License-Identifier: GPL-2.0
/* The event log and its JSON: hostile strings, ring bounds, filtering. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/events.h"
#include "core/json.h"

static char out[4096];

/* The escaped form of s[0..n), as the writer puts it in a document. */
static const char *esc(const char *s, size_t n)
{
	struct json j;

	json_init(&j);
	json_strn(&j, NULL, s, n);
	if (json_finish(&j))
		snprintf(out, sizeof(out), "(error)");
	else
		snprintf(out, sizeof(out), "%s", j.buf);
	json_free(&j);
	return out;
}

#define ESC(lit) esc(lit, sizeof(lit) - 1)

static void test_escape(void)
{
	CHECK_STR(ESC(""), "\"\"");
	CHECK_STR(ESC("python3.11"), "\"python3.11\"");
	CHECK_STR(ESC("a\"b\\c"), "\"a\\\"b\\\\c\"");
	CHECK_STR(ESC("\n\r\t\b\f"), "\"\\u000a\\u000d\\u0009\\u0008\\u000c\"");
	CHECK_STR(ESC("a\0b"), "\"a\\u0000b\"");
	CHECK_STR(ESC("\x01\x1f\x7f"), "\"\\u0001\\u001f\\u007f\"");
	CHECK_STR(ESC("</script>"), "\"</script>\"");
	/* Well-formed UTF-8 passes as it is. */
	CHECK_STR(ESC("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80"),
		  "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"");
	CHECK_STR(ESC("\xc2\x80\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf"),
		  "\"\xc2\x80\xdf\xbf\xef\xbf\xbf\xf4\x8f\xbf\xbf\"");
	/* Line and paragraph separators end a line in JavaScript. */
	CHECK_STR(ESC("a\xe2\x80\xa8"
		      "b\xe2\x80\xa9"),
		  "\"a\\u2028b\\u2029\"");
	/* Ill-formed: each maximal ill-formed subpart becomes one U+FFFD. */
	CHECK_STR(ESC("\x80"), "\"\\ufffd\"");
	CHECK_STR(ESC("\xbf\x80"), "\"\\ufffd\\ufffd\"");
	CHECK_STR(ESC("\xc0\x80"), "\"\\ufffd\\ufffd\""); /* overlong NUL */
	CHECK_STR(ESC("\xc1\xbf"), "\"\\ufffd\\ufffd\"");
	CHECK_STR(ESC("\xe0\x80\xaf"), "\"\\ufffd\\ufffd\\ufffd\""); /* overlong '/' */
	CHECK_STR(ESC("\xed\xa0\x80"), "\"\\ufffd\\ufffd\\ufffd\""); /* surrogate */
	CHECK_STR(ESC("\xf4\x90\x80\x80"), "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
	CHECK_STR(ESC("\xf5\xff\xfe"), "\"\\ufffd\\ufffd\\ufffd\"");
	CHECK_STR(ESC("\xe2\x82"), "\"\\ufffd\""); /* truncated at the end */
	CHECK_STR(ESC("\xe2\x82"
		      "A"),
		  "\"\\ufffdA\"");
	CHECK_STR(ESC("\xf0\x9f\x98"
		      "\""),
		  "\"\\ufffd\\\"\"");
	CHECK_STR(ESC("ok\xe2\x82\xac\xe2"), "\"ok\xe2\x82\xac\\ufffd\"");
	/* Bounded: nothing past n is read. */
	CHECK_STR(esc("abcdef", 3), "\"abc\"");
}

/* Valid UTF-8 and no raw control bytes, by a check independent of json.c. */
static int clean_utf8(const unsigned char *s, size_t n)
{
	for (size_t i = 0; i < n;) {
		unsigned int c = s[i], need, cp, min;

		if (c < 0x20 || c == 0x7f)
			return 0;
		if (c < 0x80) {
			i++;
			continue;
		}
		if ((c & 0xe0) == 0xc0)
			need = 1, cp = c & 0x1f, min = 0x80;
		else if ((c & 0xf0) == 0xe0)
			need = 2, cp = c & 0x0f, min = 0x800;
		else if ((c & 0xf8) == 0xf0)
			need = 3, cp = c & 0x07, min = 0x10000;
		else
			return 0;
		for (unsigned int k = 1; k <= need; k++) {
			if (i + k >= n || (s[i + k] & 0xc0) != 0x80)
				return 0;
			cp = cp << 6 | (s[i + k] & 0x3f);
		}
		if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return 0;
		i += need + 1;
	}
	return 1;
}

static void test_escape_random(void)
{
	unsigned char in[64];
	int bad = 0;

	srand(42);
	for (int round = 0; round < 20000; round++) {
		size_t n = (size_t)(rand() % (int)sizeof(in));
		const char *o;
		size_t len;

		for (size_t i = 0; i < n; i++)
			in[i] = (unsigned char)(round % 3 ? rand() : 0x80 + rand() % 0x80);
		o = esc((const char *)in, n);
		len = strlen(o);
		if (len < 2 || o[0] != '"' || o[len - 1] != '"' ||
		    !clean_utf8((const void *)o, len))
			bad++;
		/* No unescaped quote inside. */
		for (size_t i = 1; i + 1 < len; i++) {
			if (o[i] == '\\') {
				i++;
				continue;
			}
			if (o[i] == '"')
				bad++;
		}
	}
	CHECK_INT(bad, 0);
}

static void test_writer(void)
{
	struct json j;

	json_init(&j);
	json_object_begin(&j, NULL);
	json_u64(&j, "a", 18446744073709551615ull);
	json_i64(&j, "b", -5);
	json_str(&j, "c\"", "x");
	json_array_begin(&j, "d");
	json_bool(&j, NULL, true);
	json_null(&j, NULL);
	json_double(&j, NULL, 0.25);
	json_double(&j, NULL, NAN);
	json_double(&j, NULL, INFINITY);
	json_array_begin(&j, NULL);
	json_array_end(&j);
	json_object_begin(&j, NULL);
	json_object_end(&j);
	json_array_end(&j);
	json_raw(&j, "e", "{\"x\":1}", 7);
	json_object_end(&j);
	CHECK_INT(json_finish(&j), 0);
	CHECK_STR(j.buf, "{\"a\":18446744073709551615,\"b\":-5,\"c\\\"\":\"x\","
			 "\"d\":[true,null,0.25,null,null,[],{}],\"e\":{\"x\":1}}");
	json_free(&j);

	/* Unbalanced and too deep are errors, not broken documents. */
	json_init(&j);
	json_object_begin(&j, NULL);
	CHECK_INT(json_finish(&j), -EINVAL);
	json_free(&j);
	json_init(&j);
	json_array_end(&j);
	CHECK_INT(json_finish(&j), -EINVAL);
	json_free(&j);
	json_init(&j);
	for (int i = 0; i < JSON_MAX_DEPTH + 1; i++)
		json_array_begin(&j, NULL);
	CHECK_INT(json_finish(&j), -E2BIG);
	json_free(&j);
}

/* The ids of a rendered document, in order. */
static int ids(const char *doc, uint64_t *got, int max)
{
	int n = 0;

	for (const char *p = doc; (p = strstr(p, "{\"id\":")) && n < max; p++)
		got[n++] = strtoull(p + 6, NULL, 10);
	return n;
}

static char *render(struct events *ev, const char *since, const char *limit, const char *type)
{
	static char doc[65536];
	struct events_query q;
	char err[128];
	struct json j;

	if (events_parse_query(&q, since, limit, type, err, sizeof(err)))
		return NULL;
	json_init(&j);
	events_render(ev, &q, &j);
	if (json_finish(&j))
		snprintf(doc, sizeof(doc), "(error)");
	else
		snprintf(doc, sizeof(doc), "%s", j.buf);
	json_free(&j);
	return doc;
}

static void test_ring(void)
{
	struct events *ev = events_new(4, 1 << 20);
	const char *types[] = { "oom_kill", "worker_exit" };
	uint64_t got[16];
	char *doc;
	int n;

	CHECK(ev != NULL);
	doc = render(ev, NULL, NULL, NULL);
	CHECK_STR(doc, "{\"events\":[],\"last_id\":0,\"dropped\":0}");
	for (int i = 1; i <= 6; i++) {
		char body[32];

		snprintf(body, sizeof(body), "{\"n\":%d}", i);
		CHECK_INT(events_add(ev, types[i % 2], body, strlen(body)), i);
	}
	CHECK_INT(events_count(ev), 4);
	CHECK_INT(events_dropped(ev), 2);

	/* Newest first; the two oldest are gone. */
	doc = render(ev, NULL, NULL, NULL);
	n = ids(doc, got, 16);
	CHECK_INT(n, 4);
	CHECK(n == 4 && got[0] == 6 && got[1] == 5 && got[2] == 4 && got[3] == 3);
	CHECK(strstr(doc, "\"last_id\":6,\"dropped\":2}") != NULL);
	CHECK(strstr(doc, "\"type\":\"oom_kill\",\"data\":{\"n\":6}") != NULL);
	CHECK(strstr(doc, "\"time\":\"20") != NULL);

	/* since: strictly newer; limit: the newest N; type: only those. */
	n = ids(render(ev, "4", NULL, NULL), got, 16);
	CHECK(n == 2 && got[0] == 6 && got[1] == 5);
	n = ids(render(ev, "6", NULL, NULL), got, 16);
	CHECK_INT(n, 0);
	n = ids(render(ev, "0", "2", NULL), got, 16);
	CHECK(n == 2 && got[0] == 6 && got[1] == 5);
	n = ids(render(ev, NULL, NULL, "worker_exit"), got, 16);
	CHECK(n == 2 && got[0] == 5 && got[1] == 3);
	n = ids(render(ev, "3", "1", "worker_exit"), got, 16);
	CHECK(n == 1 && got[0] == 5);
	n = ids(render(ev, NULL, NULL, "tcp_failure"), got, 16);
	CHECK_INT(n, 0);

	/* Bad input to events_add. */
	CHECK_INT(events_add(ev, "Bad-Type", "{}", 2), -EINVAL);
	CHECK_INT(events_add(ev, "", "{}", 2), -EINVAL);
	CHECK_INT(events_add(ev, "x", "[1]", 3), -EINVAL);
	CHECK_INT(events_add(ev, "x", "", 0), -EINVAL);
	CHECK_INT(events_count(ev), 4);
	events_free(ev);

	/* The byte bound drops old events too. */
	ev = events_new(100, 64);
	for (int i = 0; i < 10; i++)
		CHECK(events_add(ev, "x", "{\"pad\":\"0123456789\"}", 20) > 0);
	CHECK_INT(events_count(ev), 3); /* 3 * 20 <= 64 */
	CHECK_INT(events_dropped(ev), 7);
	{
		char big[80];

		snprintf(big, sizeof(big), "{\"pad\":\"%060d\"}", 7); /* 70 bytes > 64 */
		CHECK_INT(events_add(ev, "x", big, strlen(big)), -E2BIG);
	}
	events_free(ev);

	/* The full ring: 1024 kept, ids keep growing. */
	ev = events_new(EVENTS_MAX, EVENTS_MAX_BYTES);
	for (int i = 0; i < 3000; i++)
		events_add(ev, "x", "{}", 2);
	CHECK_INT(events_count(ev), EVENTS_MAX);
	CHECK_INT(events_dropped(ev), 3000 - EVENTS_MAX);
	n = ids(render(ev, NULL, "1024", NULL), got, 2);
	CHECK(n == 2 && got[0] == 3000 && got[1] == 2999);
	doc = render(ev, NULL, NULL, NULL);
	{
		int count = 0;

		for (const char *p = doc; (p = strstr(p, "{\"id\":")); p++)
			count++;
		CHECK_INT(count, EVENTS_LIMIT_DEFAULT);
	}
	events_free(ev);
}

static void test_query(void)
{
	struct events_query q;
	char err[128];
	const char *bad_since[] = { "",
				    "-1",
				    "abc",
				    "1.5",
				    " 1",
				    "1 ",
				    "+1",
				    "0x10",
				    "18446744073709551616",
				    "99999999999999999999" };
	const char *bad_limit[] = { "", "0", "1025", "10x", "-3", "4294967297" };
	const char *bad_type[] = { "",	       "OOM",  "a-b",
				   "oom kill", "x\"y", "abcdefghijklmnopqrstuvwxyz012345" };

	CHECK_INT(events_parse_query(&q, NULL, NULL, NULL, err, sizeof(err)), 0);
	CHECK(q.since == 0 && q.limit == EVENTS_LIMIT_DEFAULT && !q.type[0]);
	CHECK_INT(events_parse_query(&q, "18446744073709551615", "1024", "oom_kill", err,
				     sizeof(err)),
		  0);
	CHECK(q.since == 18446744073709551615ull && q.limit == 1024);
	CHECK_STR(q.type, "oom_kill");
	for (size_t i = 0; i < sizeof(bad_since) / sizeof(bad_since[0]); i++) {
		err[0] = 0;
		CHECK_INT(events_parse_query(&q, bad_since[i], NULL, NULL, err, sizeof(err)),
			  -EINVAL);
		CHECK(strstr(err, "since") != NULL);
	}
	for (size_t i = 0; i < sizeof(bad_limit) / sizeof(bad_limit[0]); i++) {
		err[0] = 0;
		CHECK_INT(events_parse_query(&q, NULL, bad_limit[i], NULL, err, sizeof(err)),
			  -EINVAL);
		CHECK(strstr(err, "limit") != NULL);
	}
	for (size_t i = 0; i < sizeof(bad_type) / sizeof(bad_type[0]); i++) {
		err[0] = 0;
		CHECK_INT(events_parse_query(&q, NULL, NULL, bad_type[i], err, sizeof(err)),
			  -EINVAL);
		CHECK(strstr(err, "type") != NULL);
	}
}

int main(void)
{
	test_escape();
	test_escape_random();
	test_writer();
	test_ring();
	test_query();
	return check_summary("test_events");
}
