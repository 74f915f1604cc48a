/* err.c - error context: what we were doing, to which object, and why. */
#include "lib/lib.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/*
 * Every errno of Linux by name, indexed by its value. The values are those
 * of asm-generic/errno*.h, which both targets (x86_64, aarch64) use; the
 * designated initializers take them from <errno.h>, so the table cannot
 * drift from the C library. Aliases (EWOULDBLOCK, EDEADLOCK, ENOTSUP) have
 * the value of the name listed. musl has no text for 39 of these (EXFULL,
 * ENOTUNIQ, ...): for them the name is all a message can give.
 */
#define E(code) [code] = #code
static const char *const errno_names[] = {
	E(EPERM), E(ENOENT), E(ESRCH), E(EINTR), E(EIO), E(ENXIO), E(E2BIG), E(ENOEXEC),
	E(EBADF), E(ECHILD), E(EAGAIN), E(ENOMEM), E(EACCES), E(EFAULT), E(ENOTBLK),
	E(EBUSY), E(EEXIST), E(EXDEV), E(ENODEV), E(ENOTDIR), E(EISDIR), E(EINVAL),
	E(ENFILE), E(EMFILE), E(ENOTTY), E(ETXTBSY), E(EFBIG), E(ENOSPC), E(ESPIPE),
	E(EROFS), E(EMLINK), E(EPIPE), E(EDOM), E(ERANGE), E(EDEADLK), E(ENAMETOOLONG),
	E(ENOLCK), E(ENOSYS), E(ENOTEMPTY), E(ELOOP), E(ENOMSG), E(EIDRM), E(ECHRNG),
	E(EL2NSYNC), E(EL3HLT), E(EL3RST), E(ELNRNG), E(EUNATCH), E(ENOCSI), E(EL2HLT),
	E(EBADE), E(EBADR), E(EXFULL), E(ENOANO), E(EBADRQC), E(EBADSLT), E(EBFONT),
	E(ENOSTR), E(ENODATA), E(ETIME), E(ENOSR), E(ENONET), E(ENOPKG), E(EREMOTE),
	E(ENOLINK), E(EADV), E(ESRMNT), E(ECOMM), E(EPROTO), E(EMULTIHOP), E(EDOTDOT),
	E(EBADMSG), E(EOVERFLOW), E(ENOTUNIQ), E(EBADFD), E(EREMCHG), E(ELIBACC),
	E(ELIBBAD), E(ELIBSCN), E(ELIBMAX), E(ELIBEXEC), E(EILSEQ), E(ERESTART),
	E(ESTRPIPE), E(EUSERS), E(ENOTSOCK), E(EDESTADDRREQ), E(EMSGSIZE), E(EPROTOTYPE),
	E(ENOPROTOOPT), E(EPROTONOSUPPORT), E(ESOCKTNOSUPPORT), E(EOPNOTSUPP),
	E(EPFNOSUPPORT), E(EAFNOSUPPORT), E(EADDRINUSE), E(EADDRNOTAVAIL), E(ENETDOWN),
	E(ENETUNREACH), E(ENETRESET), E(ECONNABORTED), E(ECONNRESET), E(ENOBUFS),
	E(EISCONN), E(ENOTCONN), E(ESHUTDOWN), E(ETOOMANYREFS), E(ETIMEDOUT),
	E(ECONNREFUSED), E(EHOSTDOWN), E(EHOSTUNREACH), E(EALREADY), E(EINPROGRESS),
	E(ESTALE), E(EUCLEAN), E(ENOTNAM), E(ENAVAIL), E(EISNAM), E(EREMOTEIO), E(EDQUOT),
	E(ENOMEDIUM), E(EMEDIUMTYPE), E(ECANCELED), E(ENOKEY), E(EKEYEXPIRED),
	E(EKEYREVOKED), E(EKEYREJECTED), E(EOWNERDEAD), E(ENOTRECOVERABLE), E(ERFKILL),
	E(EHWPOISON),
};
#undef E

const char *errno_name(int code, char buf[16])
{
	if (code > 0 && (size_t)code < ARRAY_SIZE(errno_names) && errno_names[code])
		return errno_names[code];
	/* errno values are small; the modulo lets -O2 prove the 16 bytes suffice. */
	snprintf(buf, 16, "errno %u", (unsigned)code % 100000u);
	return buf;
}

/* Does the C library have words for code? musl says "No error information"
 * for every code it has none for, glibc "Unknown error N". */
static bool errno_has_text(int code, const char *text)
{
	return code > 0 && strcmp(text, "No error information") != 0 &&
	       strncmp(text, "Unknown error", 13) != 0;
}

const char *errno_text(int code, char *buf, size_t size)
{
	const char *text = strerror(code);
	char nb[16];
	const char *name = errno_name(code, nb);

	if (errno_has_text(code, text))
		snprintf(buf, size, "%s (%s)", text, name);
	else
		snprintf(buf, size, "%s", name);
	return buf;
}

static int err_vformat(struct err *e, int code, const char *fmt, va_list ap)
{
	if (code <= 0)
		code = EINVAL;
	if (e) {
		e->code = code;
		vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	}
	return -code;
}

int err_set(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	int ret;

	va_start(ap, fmt);
	ret = err_vformat(e, code, fmt, ap);
	va_end(ap);
	return ret;
}

int err_sys(struct err *e, int code, const char *fmt, ...)
{
	va_list ap;
	int ret;
	char tb[ERRNO_TEXT_MAX];

	va_start(ap, fmt);
	ret = err_vformat(e, code, fmt, ap);
	va_end(ap);
	if (e) {
		size_t n = strlen(e->msg);

		snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", errno_text(-ret, tb, sizeof(tb)));
	}
	return ret;
}

int err_wrap(struct err *e, const char *fmt, ...)
{
	char prev[ERR_MSG_MAX];
	va_list ap;
	size_t n;

	if (!e)
		return -EINVAL;
	if (e->code <= 0)
		e->code = EINVAL;
	memcpy(prev, e->msg, sizeof(prev));
	va_start(ap, fmt);
	vsnprintf(e->msg, sizeof(e->msg), fmt, ap);
	va_end(ap);
	n = strlen(e->msg);
	snprintf(e->msg + n, sizeof(e->msg) - n, ": %s", prev);
	return -e->code;
}

void err_clear(struct err *e)
{
	if (e) {
		e->code = 0;
		e->msg[0] = '\0';
	}
}
