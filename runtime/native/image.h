/* Bulkhead native runtime, floor 1: partition images (image.c; docs/image-format.md). */
#ifndef BH_IMAGE_H
#define BH_IMAGE_H

#include "bh.h"

/* image.c */
struct bh_image {
    uint8_t *data;
    size_t len;
    uint32_t board_id;
    const char *manifest; size_t manifest_len; /* JSON, not NUL-terminated */
    const uint8_t *firmware; size_t firmware_len;
    bool bytecode;
};
/* Verifies and parses; returns NULL or a one-line reason. */
const char *bh_image_load(const char *path, struct bh_image *img);

#endif
