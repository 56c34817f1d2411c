// SPDX-License-Identifier: GPL-2.0
/*
 * libFuzzer target for the requests probe's parsers: the input is fed to a
 * req_acc in pieces whose sizes come from the first byte (as the kernel's
 * events cut a request), and handed whole, exactly sized, to the route
 * templating and the JSON-RPC and XML-RPC extractors.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "requests/req_parse.h"

static struct req_acc acc;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char model[REQ_NAME_MAX], method[REQ_NAME_MAX];
	const struct req_head *h;
	struct req_head rh;
	enum req_rpc_kind kind;
	size_t step;
	char *copy;

	if (!size)
		return 0;
	step = (size_t)data[0] % 64 + 1;
	data++;
	size--;
	copy = malloc(size ? size : 1);
	if (!copy)
		return 0;
	memcpy(copy, data, size);
	req_acc_init(&acc);
	for (size_t i = 0; i < size; i += step)
		req_acc_feed(&acc, copy + i, size - i < step ? size - i : step);
	h = req_acc_finish(&acc);
	if (strnlen(h->route, sizeof(h->route)) == sizeof(h->route))
		abort();
	memset(&rh, 0, sizeof(rh));
	req_route(copy, size, &rh, &kind);
	if (strnlen(rh.route, sizeof(rh.route)) == sizeof(rh.route))
		abort();
	req_jsonrpc_model_method(copy, size, model, sizeof(model), method, sizeof(method));
	req_xmlrpc_model_method(copy, size, model, sizeof(model), method, sizeof(method));
	free(copy);
	return 0;
}
