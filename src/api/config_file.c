// SPDX-License-Identifier: MIT
#include "api/config_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int api_config_file_load(struct api *a, const char *path, struct err *e)
{
	struct stat st;
	char *buf = NULL;
	size_t len = 0;
	int fd, ret;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0)
		return err_config(e, -errno, "--config-file '%s': %s", path,
				  strerror(errno));
	if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
		ret = err_config(e, -EINVAL,
				 "--config-file '%s': not a regular file",
				 path);
		goto out;
	}
	if (st.st_size > API_CONFIG_FILE_MAX) {
		ret = err_config(e, -EFBIG,
				 "--config-file '%s': larger than %d bytes",
				 path, API_CONFIG_FILE_MAX);
		goto out;
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf) {
		ret = err_set(e, -ENOMEM, "--config-file: out of memory");
		goto out;
	}
	/* The size is re-checked while reading: the file may grow. */
	while (len < (size_t)st.st_size) {
		ssize_t n = read(fd, buf + len, (size_t)st.st_size - len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			ret = err_config(e, -errno, "--config-file '%s': %s",
					 path, strerror(errno));
			goto out;
		}
		if (n == 0)
			break;
		len += (size_t)n;
	}
	ret = api_load_config(a, buf, len, e);
	if (ret)
		err_prefix(e, ret, "--config-file '%s': ", path);
out:
	free(buf);
	close(fd);
	return ret;
}
