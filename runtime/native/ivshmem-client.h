/* The peer side of QEMU's ivshmem protocol; used by the firmware and by the node addon. */
#ifndef IVSHMEM_CLIENT_H
#define IVSHMEM_CLIENT_H
#include <stdbool.h>
#include <stdint.h>

#define BH_MAX_PEERS 32   /* peers we remember; more are ignored (bounded memory) */
#define BH_MAX_VECTORS 8  /* eventfds per peer we keep */

/* ivshmem-client.c: the peer side of QEMU's ivshmem protocol (also used by the node addon). */
struct ivs_peer {
    int id;                      /* -1: slot unused */
    int nvec;
    int efd[BH_MAX_VECTORS];
};
struct ivs_client {
    int sock;
    int my_id;
    int shm_fd;
    int my_nvec;
    int my_efd[BH_MAX_VECTORS];  /* our own doorbells: others write, we read */
    struct ivs_peer peers[BH_MAX_PEERS];
    /* partial message reassembly for the non-blocking phase */
    uint8_t rbuf[8];
    int rhave;
    int rfd;
};
/* Connects and reads the handshake (blocking). Returns 0, or -errno with *why set. */
int ivs_connect(struct ivs_client *c, const char *path, const char **why);
/* Processes pending server messages (non-blocking). Returns 0, or -1 when the server went away. */
int ivs_process(struct ivs_client *c);
/* Writes 1 to vector `vec` of peer `id` (-1: every other peer). Returns how many were rung. */
int ivs_ring(struct ivs_client *c, int id, int vec);
/* Drains our own vector `vec`; returns true if it had been rung. */
bool ivs_drain(struct ivs_client *c, int vec);
struct ivs_peer *ivs_find(struct ivs_client *c, int id);
void ivs_close(struct ivs_client *c);

#endif
