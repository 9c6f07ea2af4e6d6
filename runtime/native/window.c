/* The shared window: one mapping of the shm object, handed to the firmware as an ArrayBuffer that
 * aliases it (js.c). The C side never interprets window bytes; it only checks ranges. */
#include <errno.h>
#include <math.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include "bh.h"

struct bh_window bh_win;

void bh_window_map_fd(int fd, size_t size)
{
    struct stat st;
    if (fstat(fd, &st) < 0) bh_die("window: fstat: %s", strerror(errno));
    if ((size_t)st.st_size < size)
        bh_die("window: shared memory is %lld bytes, the board needs %zu", (long long)st.st_size, size);
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) bh_die("window: mmap %zu bytes: %s", size, strerror(errno));
    bh_win.base = p;
    bh_win.map_size = size;
    bh_win.size = size;
}

/* Offsets arrive as JS numbers: reject NaN, fractions, negatives and anything past the end. */
bool bh_window_range_ok(double off, double len)
{
    if (!(off >= 0) || !(len >= 0) || off != floor(off) || len != floor(len)) return false;
    return off + len <= (double)bh_win.size;
}
