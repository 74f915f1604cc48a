/* cmd_tls.c - `berth tls`: a CA, a server and a client certificate in one step,
 * more clients later, and the SPKI hash that [remote] read_only/clients take. */
#include "runtime/ctl/tls.h"
#include "runtime/runtime.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define TLS_DEFAULT_DAYS 3650
#define TLS_MAX_NAMES 16

static const char tls_usage[] =
	"usage: berth tls init DIR --name NAME [--ip ADDR]... [--dns NAME]...\n"
	"       berth tls client DIR NAME     another client certificate from DIR's CA\n"
	"       berth tls spki CERT           the key hash [remote] read_only/clients take\n";

/* Write a new file (never over an existing one). */
static int write_new(const char *dir, const char *name, const struct buf *b, unsigned mode,
		     struct err *e)
{
	char path[PATH_MAX];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);
	if (fd < 0) {
		if (errno == EEXIST)
			return err_set(e, EEXIST, "%s exists: not overwriting it", path);
		return err_sys(e, errno, "create %s", path);
	}
	n = write(fd, b->data, b->len);
	if (n != (ssize_t)b->len || fsync(fd) < 0) {
		int en = n < 0 ? errno : EIO;

		close(fd);
		unlink(path);
		return err_sys(e, en, "write %s", path);
	}
	close(fd);
	return 0;
}

/* Write NAME.crt and NAME.key (0600) into dir. */
static int write_pair(const char *dir, const char *name, const struct buf *der,
		      const struct tls_keypair *k, struct err *e)
{
	char fn[256];
	struct buf pem;
	int ret;

	buf_init(&pem);
	tls_key_pem(&pem, k);
	snprintf(fn, sizeof(fn), "%s.key", name);
	ret = write_new(dir, fn, &pem, 0600, e);
	memset(pem.data, 0, pem.len);
	buf_reset(&pem);
	if (ret == 0) {
		tls_pem(&pem, "CERTIFICATE", der->data, der->len);
		snprintf(fn, sizeof(fn), "%s.crt", name);
		ret = write_new(dir, fn, &pem, 0644, e);
	}
	buf_free(&pem);
	return ret;
}

static void print_spki(const char *what, const struct buf *der)
{
	uint8_t h[32];
	char s[80];

	if (tls_cert_spki_sha256((const uint8_t *)der->data, der->len, h) == 0)
		printf("%s key: %s\n", what, tls_spki_format(h, s));
}

static bool file_name_ok(const char *s)
{
	if (!*s || *s == '.' || strlen(s) > 64)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || strchr("._-", *s)))
			return false;
	return true;
}

/* Hidden options for tests: --days N, --start-days-ago N (an expired one). */
static int validity_opt(const char *opt, const char *val, long *days, long *ago)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(val, &end, 10);
	if (errno || *end || v < 0 || v > 36500)
		return -1;
	if (!strcmp(opt, "--days"))
		*days = v;
	else
		*ago = v;
	return 0;
}

static int tls_init(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL, *dns[TLS_MAX_NAMES];
	struct ip_addr ips[TLS_MAX_NAMES];
	size_t n_dns = 0, n_ips = 0;
	struct tls_keypair ca, srv, cli;
	struct buf ca_der, srv_der, cli_der;
	const uint8_t *ca_dn;
	size_t ca_dn_len;
	long days = TLS_DEFAULT_DAYS, ago = 0;
	char abs[PATH_MAX], cn[128];
	struct err e = { 0 };
	int64_t now = (int64_t)time(NULL);
	int ret = EXIT_FAIL;

	for (int i = 2; i < argc; i++) {
		const char *o = argv[i];

		if (o[0] != '-') {
			if (dir)
				goto usage;
			dir = o;
			continue;
		}
		if (i + 1 >= argc)
			goto usage;
		if (!strcmp(o, "--name")) {
			name = argv[++i];
		} else if (!strcmp(o, "--ip") || !strcmp(o, "--dns")) {
			const char *v = argv[++i];

			if (n_ips >= TLS_MAX_NAMES || n_dns >= TLS_MAX_NAMES)
				goto usage;
			if (!strcmp(o, "--dns")) {
				dns[n_dns++] = v;
			} else if (ip_parse(v, &ips[n_ips], &e) < 0) {
				fprintf(stderr, "berth tls init: --ip %s: %s\n", v, e.msg);
				return EXIT_USAGE;
			} else {
				n_ips++;
			}
		} else if (!strcmp(o, "--days") || !strcmp(o, "--start-days-ago")) {
			if (validity_opt(o, argv[++i], &days, &ago) < 0)
				goto usage;
		} else {
			goto usage;
		}
	}
	if (!dir || !name || !*name || strlen(name) > 64)
		goto usage;
	{   /* the name is a host name, or an address */
		struct ip_addr a;

		if (ip_parse(name, &a, NULL) == 0) {
			if (n_ips < TLS_MAX_NAMES)
				ips[n_ips++] = a;
		} else if (n_dns < TLS_MAX_NAMES) {
			dns[n_dns++] = name;
		}
	}
	if (mkdir_p("certificate directory", dir, 0700, &e) < 0) {
		fprintf(stderr, "berth tls init: %s\n", e.msg);
		return EXIT_FAIL;
	}
	if (!realpath(dir, abs))
		snprintf(abs, sizeof(abs), "%s", dir);
	buf_init(&ca_der);
	buf_init(&srv_der);
	buf_init(&cli_der);
	snprintf(cn, sizeof(cn), "berth CA %s", name);
	{
		struct tls_cert_req ca_req = { .cn = cn, .ca = true,
			.not_before = now - ago * 86400 - 3600, .not_after = now + (days - ago) * 86400 };
		struct tls_cert_req srv_req = { .cn = name, .server = true, .dns = dns,
			.n_dns = n_dns, .ips = ips, .n_ips = n_ips,
			.not_before = ca_req.not_before, .not_after = ca_req.not_after };
		struct tls_cert_req cli_req = { .cn = "berth admin", .client = true,
			.not_before = ca_req.not_before, .not_after = ca_req.not_after };

		if (tls_keygen(&ca, &e) < 0 || tls_keygen(&srv, &e) < 0 || tls_keygen(&cli, &e) < 0 ||
		    tls_cert_issue(&ca_req, &ca, NULL, 0, &ca, &ca_der, &e) < 0 ||
		    tls_cert_subject((uint8_t *)ca_der.data, ca_der.len, &ca_dn, &ca_dn_len) < 0 ||
		    tls_cert_issue(&srv_req, &srv, ca_dn, ca_dn_len, &ca, &srv_der, &e) < 0 ||
		    tls_cert_issue(&cli_req, &cli, ca_dn, ca_dn_len, &ca, &cli_der, &e) < 0)
			goto out;
	}
	if (write_pair(dir, "ca", &ca_der, &ca, &e) < 0 ||
	    write_pair(dir, "server", &srv_der, &srv, &e) < 0 ||
	    write_pair(dir, "client", &cli_der, &cli, &e) < 0)
		goto out;
	printf("wrote %s/{ca,server,client}.{crt,key} (keys mode 0600)\n\n", abs);
	printf("in berth.ini:\n[remote]\nlisten    = 0.0.0.0:7443\ncert      = %s/server.crt\n"
	       "key       = %s/server.key\nclient_ca = %s/ca.crt\n\n", abs, abs, abs);
	printf("then from a client with copies of ca.crt, client.crt and client.key:\n"
	       "berth -r %s:7443 --cert client.crt --key client.key --ca ca.crt status\n\n",
	       n_ips ? ip_format(&ips[0], cn) : name);
	print_spki("client", &cli_der);
	ret = EXIT_OK;
out:
	if (ret != EXIT_OK)
		fprintf(stderr, "berth tls init: %s\n", e.msg);
	memset(&ca, 0, sizeof(ca));
	memset(&srv, 0, sizeof(srv));
	memset(&cli, 0, sizeof(cli));
	buf_free(&ca_der);
	buf_free(&srv_der);
	buf_free(&cli_der);
	return ret;
usage:
	fputs(tls_usage, stderr);
	return EXIT_USAGE;
}

static int tls_client(int argc, char **argv)
{
	const char *dir = NULL, *name = NULL;
	struct tls_creds ca = { 0 };
	struct tls_keypair cak, k;
	struct buf der;
	const uint8_t *dn;
	size_t dn_len;
	long days = TLS_DEFAULT_DAYS, ago = 0;
	char path[PATH_MAX];
	struct err e = { 0 };
	int64_t now = (int64_t)time(NULL);
	int ret = EXIT_FAIL;

	for (int i = 2; i < argc; i++) {
		if (!strcmp(argv[i], "--days") || !strcmp(argv[i], "--start-days-ago")) {
			if (i + 1 >= argc || validity_opt(argv[i], argv[i + 1], &days, &ago) < 0)
				goto usage;
			i++;
		} else if (!dir) {
			dir = argv[i];
		} else if (!name) {
			name = argv[i];
		} else {
			goto usage;
		}
	}
	if (!dir || !name)
		goto usage;
	if (!file_name_ok(name)) {
		fprintf(stderr, "berth tls client: '%s': a name of letters, digits, '.', '_' and '-'\n",
			name);
		return EXIT_USAGE;
	}
	buf_init(&der);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	if (tls_load_chain(path, "CA certificate", &ca, &e) < 0)
		goto out;
	snprintf(path, sizeof(path), "%s/ca.key", dir);
	if (tls_load_key(path, "CA key", &ca, &e) < 0 || tls_keypair_from_creds(&cak, &ca, &e) < 0)
		goto out;
	if (tls_cert_subject(ca.chain[0].data, ca.chain[0].data_len, &dn, &dn_len) < 0) {
		err_set(&e, EINVAL, "%s/ca.crt: cannot read its subject", dir);
		goto out;
	}
	{
		struct tls_cert_req req = { .cn = name, .client = true,
			.not_before = now - ago * 86400 - 3600, .not_after = now + (days - ago) * 86400 };

		if (tls_keygen(&k, &e) < 0 || tls_cert_issue(&req, &k, dn, dn_len, &cak, &der, &e) < 0 ||
		    write_pair(dir, name, &der, &k, &e) < 0)
			goto out;
	}
	printf("wrote %s/%s.crt and %s/%s.key (mode 0600)\n", dir, name, dir, name);
	print_spki(name, &der);
	ret = EXIT_OK;
out:
	if (ret != EXIT_OK)
		fprintf(stderr, "berth tls client: %s\n", e.msg);
	memset(&cak, 0, sizeof(cak));
	memset(&k, 0, sizeof(k));
	tls_creds_free(&ca);
	buf_free(&der);
	return ret;
usage:
	fputs(tls_usage, stderr);
	return EXIT_USAGE;
}

static int tls_spki(int argc, char **argv)
{
	struct tls_creds c = { 0 };
	struct err e = { 0 };
	uint8_t h[32];
	char s[80];

	if (argc != 3) {
		fputs(tls_usage, stderr);
		return EXIT_USAGE;
	}
	if (tls_load_chain(argv[2], "certificate", &c, &e) < 0) {
		fprintf(stderr, "berth tls spki: %s\n", e.msg);
		return EXIT_FAIL;
	}
	if (tls_cert_spki_sha256(c.chain[0].data, c.chain[0].data_len, h) < 0) {
		fprintf(stderr, "berth tls spki: %s: cannot find the public key\n", argv[2]);
		tls_creds_free(&c);
		return EXIT_FAIL;
	}
	printf("%s\n", tls_spki_format(h, s));
	tls_creds_free(&c);
	return EXIT_OK;
}

int cmd_tls(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "init"))
		return tls_init(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "client"))
		return tls_client(argc, argv);
	if (argc >= 2 && !strcmp(argv[1], "spki"))
		return tls_spki(argc, argv);
	fputs(tls_usage, stderr);
	return EXIT_USAGE;
}
