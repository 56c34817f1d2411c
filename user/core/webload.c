// SPDX-License-Identifier: GPL-2.0
/*
 * webconfig_load: the file, the certificate files it names, and GnuTLS's
 * word on them, so that a file that cannot serve is refused when read (at
 * start: exit 2; on reload: the old one stays) rather than at a handshake.
 */
#include "core/webconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <gnutls/gnutls.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Reads a whole file of at most max bytes into a NUL-terminated buffer. */
static int slurp(const char *path, size_t max, char **out, size_t *len)
{
	size_t n = 0;
	ssize_t r;
	char *buf;
	int fd, err = 0;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd < 0)
		return -errno;
	buf = malloc(max + 2);
	if (!buf) {
		close(fd);
		return -ENOMEM;
	}
	while (n <= max && (r = read(fd, buf + n, max + 1 - n)) != 0) {
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		n += (size_t)r;
	}
	close(fd);
	if (!err && n > max)
		err = -EFBIG;
	if (err) {
		free(buf);
		return err;
	}
	buf[n] = 0;
	*out = buf;
	if (len)
		*len = n;
	return 0;
}

/* The PEM from path (a file) or inline text; NULL for neither. */
static int pem_of(const char *path, const char *text, const char *name, const char *key,
		  unsigned int line, char **out, char *err, size_t errlen)
{
	int rc;

	*out = NULL;
	if (path && *path) {
		rc = slurp(path, WEB_CONFIG_MAX, out, NULL);
		if (rc)
			snprintf(err, errlen, "%s:%u: tls_server_config.%s: cannot read \"%.128s\": %s",
				 name, line, key, path, rc == -EFBIG ? "too big" : strerror(-rc));
		return rc;
	}
	if (text && *text) {
		*out = strdup(text);
		return *out ? 0 : -ENOMEM;
	}
	return 0;
}

/* Loads the key pair and the client CA into GnuTLS once, as the server will. */
static int check_with_gnutls(struct web_config *c, const char *name, char *err, size_t errlen)
{
	gnutls_certificate_credentials_t cred = NULL;
	gnutls_priority_t prio = NULL;
	gnutls_datum_t cd, kd, ad;
	const char *where = NULL;
	int rc;

	if (gnutls_certificate_allocate_credentials(&cred))
		return -ENOMEM;
	cd = (gnutls_datum_t){ (unsigned char *)c->cert_pem, (unsigned int)strlen(c->cert_pem) };
	kd = (gnutls_datum_t){ (unsigned char *)c->key_pem, (unsigned int)strlen(c->key_pem) };
	rc = gnutls_certificate_set_x509_key_mem2(cred, &cd, &kd, GNUTLS_X509_FMT_PEM, NULL, 0);
	if (rc < 0) {
		snprintf(err, errlen, "%s:%u: tls_server_config.%s: the certificate and key do not load: %s",
			 name, c->cert_file ? c->line_cert_file : c->line_cert,
			 c->cert_file ? "cert_file" : "cert", gnutls_strerror(rc));
		goto fail;
	}
	if (c->ca_pem) {
		ad = (gnutls_datum_t){ (unsigned char *)c->ca_pem, (unsigned int)strlen(c->ca_pem) };
		rc = gnutls_certificate_set_x509_trust_mem(cred, &ad, GNUTLS_X509_FMT_PEM);
		if (rc <= 0) {
			snprintf(err, errlen, "%s:%u: tls_server_config.%s: no CA certificate in it%s%s",
				 name, c->client_ca_file ? c->line_client_ca_file : c->line_client_ca,
				 c->client_ca_file ? "client_ca_file" : "client_ca",
				 rc < 0 ? ": " : "", rc < 0 ? gnutls_strerror(rc) : "");
			rc = -EINVAL;
			goto fail;
		}
	}
	rc = gnutls_priority_init(&prio, c->priority, &where);
	if (rc < 0) {
		snprintf(err, errlen, "%s:%u: tls_server_config.%s: GnuTLS cannot use these (%s at \"%.40s\")",
			 name, c->line_suites ? c->line_suites : c->line_curves,
			 c->line_suites ? "cipher_suites" : "curve_preferences",
			 gnutls_strerror(rc), where ? where : "");
		goto fail;
	}
	gnutls_priority_deinit(prio);
	gnutls_certificate_free_credentials(cred);
	return 0;
fail:
	gnutls_certificate_free_credentials(cred);
	return -EINVAL;
}

int webconfig_load(struct web_config *c, const char *path, char *err, size_t errlen)
{
	char *text = NULL, *copy = NULL;
	size_t len;
	int rc;

	memset(c, 0, sizeof(*c));
	rc = slurp(path, WEB_CONFIG_MAX, &text, &len);
	if (rc) {
		snprintf(err, errlen, "%.200s: cannot read the web config: %s", path,
			 rc == -EFBIG ? "over 256 KiB" : strerror(-rc));
		return rc;
	}
	copy = strdup(path);
	if (!copy) {
		free(text);
		return -ENOMEM;
	}
	rc = webconfig_parse(c, text, len, dirname(copy), path, err, errlen);
	free(text);
	free(copy);
	if (rc || !c->tls)
		return rc;
	rc = pem_of(c->cert_file, c->cert, path, "cert_file", c->line_cert_file, &c->cert_pem, err,
		    errlen);
	if (!rc)
		rc = pem_of(c->key_file, c->key, path, "key_file", c->line_key_file, &c->key_pem,
			    err, errlen);
	if (!rc)
		rc = pem_of(c->client_ca_file, c->client_ca, path, "client_ca_file",
			    c->line_client_ca_file, &c->ca_pem, err, errlen);
	if (!rc)
		rc = check_with_gnutls(c, path, err, errlen);
	if (rc)
		webconfig_free(c);
	return rc;
}
