/* ref.c - image references, parsed and normalised the way docker does
 * (github.com/distribution/reference: ParseNormalizedNamed), so that a name
 * a user types means here what it means to `docker pull`. */
#include "runtime/image/image_int.h"

#include <stdio.h>
#include <string.h>

#define DOCKER_HUB "docker.io"

static bool is_lower_alnum(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

static bool is_alnum(char c)
{
	return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A host: DNS labels separated by dots (letters, digits, inner hyphens),
 * or an IPv6 literal in brackets; then an optional :PORT (digits). */
static const char *domain_check(const char *s, size_t len)
{
	size_t i = 0, port;

	if (len && s[0] == '[') {
		while (i < len && s[i] != ']')
			i++;
		if (i == len || i < 3)
			return "unterminated or empty IPv6 address";
		for (size_t k = 1; k < i; k++)
			if (!strchr("0123456789abcdefABCDEF:.", s[k]))
				return "invalid IPv6 address";
		i++;
	} else {
		for (;;) {
			size_t start = i;

			while (i < len && (is_alnum(s[i]) || s[i] == '-'))
				i++;
			if (i == start || s[start] == '-' || s[i - 1] == '-')
				return "invalid registry host name";
			if (i < len && s[i] == '.') {
				i++;
				continue;
			}
			break;
		}
	}
	if (i == len)
		return NULL;
	if (s[i] != ':')
		return "invalid registry host name";
	port = ++i;
	while (i < len && s[i] >= '0' && s[i] <= '9')
		i++;
	if (i == port || i != len || i - port > 5)
		return "invalid registry port";
	return NULL;
}

/* Path components: [a-z0-9]+ joined by '.', '_', "__" or a run of '-'. */
static const char *path_check(const char *s, size_t len)
{
	size_t i = 0;

	for (;;) {                          /* one component */
		if (i == len || !is_lower_alnum(s[i]))
			goto bad;
		for (;;) {
			while (i < len && is_lower_alnum(s[i]))
				i++;
			if (i == len || s[i] == '/')
				break;
			if (s[i] == '.') {
				i++;
			} else if (s[i] == '_') {
				i += i + 1 < len && s[i + 1] == '_' ? 2 : 1;
			} else if (s[i] == '-') {
				while (i < len && s[i] == '-')
					i++;
			} else {
				goto bad;
			}
			if (i == len || !is_lower_alnum(s[i]))
				goto bad;
		}
		if (i == len)
			return NULL;
		i++;                        /* the '/' */
	}
bad:
	for (size_t k = 0; k < len; k++)
		if (s[k] >= 'A' && s[k] <= 'Z')
			return "repository name must be lowercase";
	return "invalid repository name (lower-case letters and digits, separated by '.', '_', "
	       "'__', '-' or '/')";
}

static const char *tag_check(const char *s)
{
	size_t n = strlen(s);

	if (n == 0)
		return "empty tag";
	if (n > 128)
		return "tag longer than 128 characters";
	if (s[0] == '.' || s[0] == '-')
		return "a tag may not start with '.' or '-'";
	for (size_t i = 0; i < n; i++)
		if (!is_alnum(s[i]) && !strchr("_.-", s[i]))
			return "invalid tag (letters, digits, '_', '.' and '-' only)";
	return NULL;
}

int image_ref_parse(const char *s, struct image_ref *r, struct err *e)
{
	char name[IMAGE_REF_MAX], tag[129] = "", *at, *colon, *slash, *rest;
	const char *why = NULL;
	size_t dl;

	memset(r, 0, sizeof(*r));
	if (!s || !*s)
		return err_set(e, EINVAL, "empty image reference");
	if (strlen(s) >= sizeof(name))
		return err_set(e, EINVAL, "invalid image reference '%.64s...': longer than %d bytes",
			       s, IMAGE_REF_MAX - 1);
	strcpy(name, s);
	if ((at = strchr(name, '@'))) {
		*at++ = '\0';
		if (!image_digest_valid(at)) {
			why = strchr(at, ':') && strncmp(at, "sha256:", 7) ?
			      "unsupported digest algorithm (sha256 only)" :
			      "invalid digest (sha256: and 64 lower-case hex digits)";
			goto bad;
		}
		strcpy(r->digest, at);
	}
	slash = strrchr(name, '/');
	colon = strrchr(name, ':');
	if (colon && (!slash || colon > slash)) {
		*colon++ = '\0';
		if ((why = tag_check(colon)))
			goto bad;
		strcpy(tag, colon);
	}
	if (!*name) {
		why = "no repository name";
		goto bad;
	}
	/* The first component is a registry when it looks like a host: a dot,
	 * a port, "localhost", or an upper-case letter (never in a repository). */
	slash = strchr(name, '/');
	dl = slash ? (size_t)(slash - name) : 0;
	if (slash && (memchr(name, '.', dl) || memchr(name, ':', dl) ||
		      (dl == 9 && !memcmp(name, "localhost", 9)) ||
		      strcspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ") < dl)) {
		if ((why = domain_check(name, dl)))
			goto bad;
		if (dl >= sizeof(r->registry)) {
			why = "registry name too long";
			goto bad;
		}
		memcpy(r->registry, name, dl);
		rest = slash + 1;
		if (!strcmp(r->registry, "index.docker.io")) {
			memset(r->registry, 0, sizeof(r->registry));
			strcpy(r->registry, DOCKER_HUB);
		}
	} else {
		strcpy(r->registry, DOCKER_HUB);
		rest = name;
	}
	if ((why = path_check(rest, strlen(rest))))
		goto bad;
	/* docker's limit is on the name as the user wrote it (registry
	 * included, "library/" not), and it keeps repo inside its 256 bytes */
	if (strlen(name) > 255) {
		why = "name longer than 255 characters";
		goto bad;
	}
	if (!strcmp(r->registry, DOCKER_HUB) && !strchr(rest, '/')) {
		strcpy(r->repo, "library/");
		strcat(r->repo, rest);
	} else {
		strcpy(r->repo, rest);
	}
	if (*tag)
		strcpy(r->tag, tag);
	else if (!*r->digest)
		strcpy(r->tag, "latest");
	return 0;
bad:
	memset(r, 0, sizeof(*r));
	return err_set(e, EINVAL, "invalid image reference '%s': %s", s, why);
}

void image_ref_format(const struct image_ref *r, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s%s%s%s%s", r->registry, r->repo, *r->tag ? ":" : "", r->tag,
		 *r->digest ? "@" : "", r->digest);
}
