/* Bulkhead native runtime, floor 1: backing services (services.c, packet.c; docs/hal.md "Services").
 * They wake the firmware through event.c (bh_event_watch, bh_event_due), never through the loop. */
#ifndef BH_SERVICES_H
#define BH_SERVICES_H

#include "bh.h"

/* services.c */
enum bh_svc_kind { BH_SVC_STORAGE, BH_SVC_STREAM, BH_SVC_ENTROPY, BH_SVC_PACKET };
/* Command-line override: name=value (storage: a path, or ro:path; stream: stdio|null|pty|unix:PATH;
 * packet: tap:IFNAME or switch:NAME). */
int bh_services_override(const char *arg);
const char *bh_services_override_for(const char *name);
int bh_storage_open(const char *name, const char *path, bool read_only);
int bh_storage_info(int h, double *size, int *ro);
int bh_storage_read(int h, double foff, double woff, double len);
int bh_storage_write(int h, double foff, double woff, double len);
int bh_storage_flush(int h);
int bh_storage_discard(int h, double foff, double len);
int bh_storage_write_zeroes(int h, double foff, double len);
void bh_storage_flush_all(void);
int bh_stream_open(const char *name, const char *backing);
int bh_stream_write(int h, double woff, double len);
int bh_stream_read(int h, double woff, double maxlen);
int bh_entropy_open(const char *name);
int bh_entropy_read(int h, double woff, double len);
int bh_packet_open(const char *name, const char *sw, const char *tap);

/* packet.c: the switch and TAP ports (docs/net.md). Handles are service handles. */
int bh_packet_attach(int h, const char *name, const char *sw, const char *tap);
int bh_packet_send(int h, double woff, double len, double flags, double cs, double co);
int bh_packet_peek(int h, double out[7], double k);
int bh_packet_promote(int h, double k);
int bh_packet_recv(int h, double woff, double maxlen, double flags);
int bh_packet_set_offloads(int h, double offloads);
void bh_packet_log_counters(int level);

#endif
