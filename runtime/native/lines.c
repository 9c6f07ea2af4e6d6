/*
 * Interrupt lines. The board names two: `toFrontend` (we raise it) and `fromFrontend` (the frontend
 * rings it). Over ivshmem both are vector 0 doorbells: raising writes vector 0 of every other peer
 * (one frontend per window), and the frontend rings our own vector 0 (Doorbell register
 * = backendPeerId << 16 | 0). Without a server (--shm) there are no doorbells: raising counts only.
 */
#include "bh.h"

static struct ivs_client *ivs;
static int line_to = 0, line_from = 1;
unsigned long bh_lines_raised;

void bh_lines_init_ivshmem(struct ivs_client *c) { ivs = c; }
void bh_lines_set_board(int to_frontend, int from_frontend) { line_to = to_frontend; line_from = from_frontend; }
int bh_lines_from_frontend(void) { return line_from; }
int bh_lines_peer_id(void) { return ivs ? ivs->my_id : bh_uio_peer_id(); }

/* --uio (uio.c): the device's interrupt count instead of an eventfd, its Doorbell register to ring */
int bh_lines_rx_fd(void)
{
    if (bh_uio_fd() >= 0) return bh_uio_fd();
    return ivs && ivs->my_nvec > 0 ? ivs->my_efd[0] : -1;
}

bool bh_lines_edge(void) { return bh_uio_fd() < 0 && ivs != NULL; }

bool bh_lines_drain(void)
{
    if (bh_uio_fd() >= 0) return bh_uio_drain();
    return ivs && ivs_drain(ivs, 0);
}

void bh_lines_raise(int line)
{
    if (line != line_to) {
        static bool warned;
        if (!warned) bh_log(BH_LOG_WARN, "raise(%d): the board has no such line towards the frontend", line);
        warned = true;
        return;
    }
    bh_lines_raised++;
    /* No frontend yet: nothing to ring; it reads READY from the header when it attaches. */
    if (ivs) ivs_ring(ivs, -1, 0);
    else bh_uio_ring();
}
