/* Whole-file reads for the loader: bundles, boards and partition images (at most 1 GiB). */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>
#include "bh.h"

uint8_t *bh_read_file(const char *path, size_t *len)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return NULL;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size > (1 << 30)) { close(fd); errno = EFBIG; return NULL; }
    uint8_t *buf = malloc(st.st_size + 1);
    size_t got = 0;
    while (buf && got < (size_t)st.st_size) {
        ssize_t n = read(fd, buf + got, st.st_size - got);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        got += n;
    }
    close(fd);
    if (!buf || got != (size_t)st.st_size) { free(buf); errno = EIO; return NULL; }
    buf[got] = 0;
    *len = got;
    return buf;
}
