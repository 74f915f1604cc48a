/* file.c - files written so that a reader (or a power cut) never sees half
 * of one: a temporary file beside it, renamed over it. */
#include "lib/lib.h"

#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

int mkdir_p(const char *what, const char *path, unsigned mode, struct err *e)
{
	char tmp[4096];
	size_t n = strlen(path);

	if (n == 0 || n >= sizeof(tmp))
		return err_set(e, ENAMETOOLONG, "%s '%s': bad path", what, path);
	memcpy(tmp, path, n + 1);
	for (char *p = tmp + 1;; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;

		*p = '\0';
		if (mkdir(tmp, (mode_t)mode) < 0 && errno != EEXIST)
			return err_sys(e, errno, "create %s %s", what, tmp);
		*p = c;
		if (!c)
			return 0;
	}
}

void sleep_ms(unsigned ms)
{
	struct timespec ts = { (time_t)(ms / 1000), (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t w = write(fd, p, len);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0)
			return -errno;
		p += w;
		len -= (size_t)w;
	}
	return 0;
}

int fsync_dir(const char *path, struct err *e)
{
	int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC), ret = 0;

	if (fd < 0)
		return err_sys(e, errno, "open %s", path);
	if (fsync(fd) < 0)
		ret = err_sys(e, errno, "fsync %s", path);
	close(fd);
	return ret;
}

int file_write_atomic(const char *path, const void *data, size_t len, unsigned mode,
		      bool durable, struct err *e)
{
	char tmp[strlen(path) + sizeof(".tmp")];   /* sized: a monitor's stack stays small */
	int fd, ret;

	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, (mode_t)mode);
	if (fd < 0)
		return err_sys(e, errno, "create %s", tmp);
	ret = write_all(fd, data, len);
	if (!ret && durable && fsync(fd) < 0)
		ret = -errno;
	if (close(fd) < 0 && !ret)
		ret = -errno;
	if (ret) {
		unlink(tmp);
		return err_sys(e, -ret, "write %s", tmp);
	}
	if (rename(tmp, path) < 0) {
		ret = errno;
		unlink(tmp);
		return err_sys(e, ret, "rename %s to %s", tmp, path);
	}
	if (durable) {
		char dir[sizeof(tmp)], *slash;

		snprintf(dir, sizeof(dir), "%s", path);
		slash = strrchr(dir, '/');
		if (slash == dir)
			slash[1] = '\0';
		else if (slash)
			*slash = '\0';
		return fsync_dir(slash ? dir : ".", e);
	}
	return 0;
}
