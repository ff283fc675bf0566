/* SPDX-License-Identifier: MIT */
/* File helpers shared by the fuzz targets that load from disk (see fuzz_files.h). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "fuzz_files.h"

void fuzz_make_dir(char *dir, size_t size, const char *name)
{
	snprintf(dir, size, "/dev/shm/dnsink-fuzz-%s-XXXXXX", name);
	if (mkdtemp(dir))
		return;
	snprintf(dir, size, "/tmp/dnsink-fuzz-%s-XXXXXX", name);
	if (!mkdtemp(dir))
		abort();
}

int fuzz_write_file(const char *path, const void *data, size_t size)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (fd < 0)
		return -1;
	while (size > 0) {
		ssize_t n = write(fd, data, size);
		if (n <= 0) {
			close(fd);
			return -1;
		}
		data = (const char *)data + n;
		size -= (size_t)n;
	}
	return close(fd);
}
