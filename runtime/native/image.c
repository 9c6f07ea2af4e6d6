/*
 * Partition image loader (docs/image-format.md). Everything in the image is untrusted until its
 * SHA-256 matches, and its layout is untrusted until every offset is checked against the file.
 * Each refusal is one line naming the reason; main() prints it and exits non-zero.
 *
 *   0x00  8  magic "BHLKIMG\0"          0x18 4  manifestOffset
 *   0x08  2  formatVersion (1)          0x1C 4  manifestLength
 *   0x0A  2  headerSize (64)            0x20 4  firmwareOffset
 *   0x0C  4  abi (1)                    0x24 4  firmwareLength
 *   0x10  4  boardId                    0x28 8  totalLength (file size, hash included)
 *   0x14  4  flags (bit 0: bytecode)    0x30 16 reserved, zero
 *   ... manifest (JSON) ... firmware ... SHA-256 of bytes [0, totalLength - 32)
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <mbedtls/sha256.h>
#include "image.h"

#define IMG_MAGIC "BHLKIMG"
#define IMG_VERSION 1
#define IMG_HEADER 64
#define IMG_HASH 32
#define IMG_FLAG_BYTECODE 1u

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }
static uint16_t le16(const uint8_t *p) { return p[0] | p[1] << 8; }
static uint64_t le64(const uint8_t *p) { return le32(p) | (uint64_t)le32(p + 4) << 32; }

static char reason[256];

static const char *refuse(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *refuse(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(reason, sizeof reason, fmt, ap);
    va_end(ap);
    return reason;
}

/* A section [off, off+len) must sit between the header and the hash. */
static bool section_ok(uint64_t off, uint64_t len, uint64_t total)
{
    return off >= IMG_HEADER && len <= total && off <= total - IMG_HASH - len;
}

const char *bh_image_load(const char *path, struct bh_image *img)
{
    memset(img, 0, sizeof *img);
    size_t len;
    uint8_t *d = bh_read_file(path, &len);
    if (!d) return refuse("cannot read image %s: %s", path, strerror(errno));
    img->data = d;
    img->len = len;
    if (len < 8 || memcmp(d, IMG_MAGIC "\0", 8) != 0) return refuse("%s is not a Bulkhead partition image (bad magic)", path);
    if (len < IMG_HEADER + IMG_HASH) return refuse("image truncated: %zu bytes, smaller than header and hash", len);
    /* The version comes before anything else is read: another version may lay the rest out differently. */
    uint16_t ver = le16(d + 8);
    if (ver != IMG_VERSION) return refuse("image format version %u, this runtime reads version %u", ver, IMG_VERSION);
    uint64_t total = le64(d + 0x28);
    if (total > len) return refuse("image truncated: header says %llu bytes, file has %zu", (unsigned long long)total, len);
    if (total < len) return refuse("image has %zu bytes, header says %llu: trailing data", len, (unsigned long long)total);
    uint8_t h[32];
    if (mbedtls_sha256_ret(d, len - IMG_HASH, h, 0) != 0) return refuse("image: SHA-256 failed");
    if (memcmp(h, d + len - IMG_HASH, IMG_HASH) != 0) return refuse("image corrupted: SHA-256 mismatch");
    if (le16(d + 0x0A) != IMG_HEADER) return refuse("image header size %u, expected %u", le16(d + 0x0A), IMG_HEADER);
    uint32_t abi = le32(d + 0x0C);
    /* ABI versions only add to __hal (docs/hal.md): firmware built for this ABI or an older one runs. */
    if (abi == 0 || abi > BH_ABI) return refuse("image needs runtime ABI %u, this runtime provides ABI %u", abi, BH_ABI);
    uint32_t flags = le32(d + 0x14);
    if (flags & ~IMG_FLAG_BYTECODE) return refuse("image has unknown flags 0x%x", flags);
    for (int i = 0x30; i < IMG_HEADER; i++)
        if (d[i]) return refuse("image header reserved bytes are not zero");
    uint32_t mo = le32(d + 0x18), ml = le32(d + 0x1C), fo = le32(d + 0x20), fl = le32(d + 0x24);
    if (!section_ok(mo, ml, total) || !section_ok(fo, fl, total) || (mo < fo ? mo + ml > fo : fo + fl > mo))
        return refuse("image sections overlap or leave the file");
    img->board_id = le32(d + 0x10);
    img->manifest = (const char *)d + mo;
    img->manifest_len = ml;
    img->firmware = d + fo;
    img->firmware_len = fl;
    img->bytecode = flags & IMG_FLAG_BYTECODE;
    return NULL;
}
