/*
 * I2C bus services (docs/hal.md i2c rows, docs/i2c.md): the board's simulated targets behind
 * bulkhead.i2cTransfer. runtime/node/i2c.ts is the same bus in TypeScript; test/shared runs one
 * suite against both, so the semantics here and there are one contract:
 *
 *   transfer  one I2C transaction: every entry is checked first (addresses, flags, window ranges,
 *             message sizes, MORE continuations): anything wrong refuses the whole transaction with
 *             -EINVAL/-EFAULT and nothing moves. Then the messages run in order; the first one a
 *             target does not acknowledge (no target at the address, or data it refuses) stops the
 *             transaction, and the answer is the number of messages that completed. A STOP follows.
 *   24c02     256 bytes in 8-byte pages, contents in a file (created erased, 0xFF; it must then be
 *             exactly 256 bytes). A write's first byte is the word address, data bytes roll over
 *             inside its page; reads roll over 255 -> 0 and continue from the address pointer.
 *             Written bytes reach the file at the STOP: pwrite + fdatasync (the part's write cycle).
 *   temperature-sensor  8 registers (temperature, fraction, config, high and low limit, status,
 *             manufacturer and device ID); writes past register 7 or to a read-only register, and
 *             reads past register 7, are not acknowledged.
 *
 * The targets are simulated in the runtime rather than the firmware because they are the backing:
 * the firmware's virtio-i2c speaks the protocol, and a board whose backend owns a real controller
 * would put /dev/i2c-N behind this same call (docs/i2c.md, "Where the targets live").
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include "services.h"

#define I2C_M_READ 1
#define I2C_M_MORE 0x100
#define EEPROM_BYTES 256
#define EEPROM_PAGE 8
#define SENSOR_REGS 8
#define SENSOR_MANUFACTURER_ID 0x42
#define SENSOR_DEVICE_ID 0x54

enum { REG_TEMP, REG_TEMP_FRAC, REG_CONFIG, REG_T_HIGH, REG_T_LOW, REG_STATUS, REG_MANUFACTURER_ID, REG_DEVICE_ID };
static const bool sensor_writable[SENSOR_REGS] = { false, false, true, true, true, false, false, false };

struct target {
    char name[64];
    int address;
    enum bh_i2c_target_type type;
    unsigned ptr;
    bool dirty, touched;
    int fd;
    uint8_t mem[EEPROM_BYTES]; /* 24c02: the contents; sensor: its registers */
};

struct bus {
    bool used;
    int n;
    struct target t[BH_I2C_MAX_TARGETS];
    unsigned long transactions, nacks;
};

static struct bus buses[BH_MAX_SERVICES];
static uint8_t msgbuf[BH_I2C_MAX_MESSAGE]; /* one message's bytes: gathered from / scattered into the window */

static struct bus *get_bus(int h)
{
    return h >= 0 && h < BH_MAX_SERVICES && buses[h].used ? &buses[h] : NULL;
}

static void sensor_status(struct target *t)
{
    int temp = (int8_t)t->mem[REG_TEMP], high = (int8_t)t->mem[REG_T_HIGH], low = (int8_t)t->mem[REG_T_LOW];
    t->mem[REG_STATUS] = (temp >= high ? 1 : 0) | (temp < low ? 2 : 0);
}

static int open_eeprom(struct target *t, const char *path)
{
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0 && errno == ENOENT) {
        fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (fd >= 0) {
            memset(t->mem, 0xff, EEPROM_BYTES); /* an erased part */
            if (pwrite(fd, t->mem, EEPROM_BYTES, 0) != EEPROM_BYTES || fdatasync(fd) < 0) {
                int e = errno;
                close(fd);
                return -e;
            }
        }
    }
    if (fd < 0) return -errno;
    struct stat st;
    if (fstat(fd, &st) < 0 || st.st_size != EEPROM_BYTES) {
        bh_log(BH_LOG_ERROR, "i2c target %s: %s is %lld bytes, a 24c02 holds %d", t->name, path, (long long)st.st_size, EEPROM_BYTES);
        close(fd);
        return -EINVAL;
    }
    if (pread(fd, t->mem, EEPROM_BYTES, 0) != EEPROM_BYTES) {
        int e = errno ? errno : EIO;
        close(fd);
        return -e;
    }
    t->fd = fd;
    return 0;
}

int bh_i2c_attach(int h, const char *name, const struct bh_i2c_target_cfg *cfg, int n)
{
    if (h < 0 || h >= BH_MAX_SERVICES) return -EINVAL;
    struct bus *b = &buses[h];
    memset(b, 0, sizeof *b);
    if (n > BH_I2C_MAX_TARGETS) {
        bh_log(BH_LOG_ERROR, "i2c service %s: %d targets, at most %d", name, n, BH_I2C_MAX_TARGETS);
        return -EINVAL;
    }
    for (int i = 0; i < n; i++) {
        struct target *t = &b->t[i];
        snprintf(t->name, sizeof t->name, "%s", cfg[i].name);
        t->address = cfg[i].address;
        t->type = cfg[i].type;
        t->fd = -1;
        for (int k = 0; k < i; k++)
            if (b->t[k].address == t->address) {
                bh_log(BH_LOG_ERROR, "i2c target %s: address 0x%02x is taken by %s", t->name, t->address, b->t[k].name);
                goto fail;
            }
        if (t->type == BH_I2C_24C02) {
            int r = open_eeprom(t, cfg[i].path);
            if (r < 0) {
                bh_log(BH_LOG_ERROR, "i2c target %s: cannot open %s: %s", t->name, cfg[i].path, strerror(-r));
                goto fail;
            }
            bh_log(BH_LOG_DEBUG, "i2c %s: 24c02 %s at 0x%02x, %s", name, t->name, t->address, cfg[i].path);
        } else {
            int fixed = (int)(cfg[i].celsius * 256 + (cfg[i].celsius >= 0 ? 0.5 : -0.5));
            t->mem[REG_TEMP] = (uint8_t)(fixed >> 8);
            t->mem[REG_TEMP_FRAC] = (uint8_t)fixed;
            t->mem[REG_T_HIGH] = 80;
            t->mem[REG_T_LOW] = 10;
            t->mem[REG_MANUFACTURER_ID] = SENSOR_MANUFACTURER_ID;
            t->mem[REG_DEVICE_ID] = SENSOR_DEVICE_ID;
            sensor_status(t);
        }
        b->n = i + 1;
    }
    b->used = true;
    return 0;
fail:
    for (int k = 0; k < n; k++)
        if (b->t[k].fd >= 0) close(b->t[k].fd);
    memset(b, 0, sizeof *b);
    return -EINVAL;
}

static struct target *find(struct bus *b, int address)
{
    for (int i = 0; i < b->n; i++)
        if (b->t[i].address == address) return &b->t[i];
    return NULL;
}

/* A write message to `t`; false = not acknowledged (nothing changed). */
static bool target_write(struct target *t, const uint8_t *d, size_t len)
{
    if (len == 0) return true; /* address only (SMBus Quick) */
    unsigned first = d[0];
    if (t->type == BH_I2C_24C02) {
        unsigned page = first & ~(unsigned)(EEPROM_PAGE - 1), off = first & (EEPROM_PAGE - 1);
        for (size_t i = 1; i < len; i++) {
            t->mem[page | off] = d[i];
            off = (off + 1) & (EEPROM_PAGE - 1);
            t->dirty = true;
        }
        t->ptr = page | off;
        return true;
    }
    if (first >= SENSOR_REGS || first + len - 1 > SENSOR_REGS) return false;
    for (size_t i = 1; i < len; i++)
        if (!sensor_writable[first + i - 1]) return false;
    memcpy(t->mem + first, d + 1, len - 1);
    t->ptr = first + (unsigned)len - 1;
    sensor_status(t);
    return true;
}

/* A read message from `t` into `d`; false = not acknowledged (nothing read). */
static bool target_read(struct target *t, uint8_t *d, size_t len)
{
    if (t->type == BH_I2C_24C02) {
        for (size_t i = 0; i < len; i++) {
            d[i] = t->mem[t->ptr];
            t->ptr = (t->ptr + 1) & (EEPROM_BYTES - 1);
        }
        return true;
    }
    if (t->ptr + len > SENSOR_REGS) return false;
    memcpy(d, t->mem + t->ptr, len);
    t->ptr += (unsigned)len;
    return true;
}

/* The STOP: a 24c02 that was written commits its bytes to the file. */
static void target_stop(struct target *t)
{
    if (t->type != BH_I2C_24C02 || !t->dirty) return;
    if (pwrite(t->fd, t->mem, EEPROM_BYTES, 0) != EEPROM_BYTES || fdatasync(t->fd) < 0)
        bh_log(BH_LOG_ERROR, "i2c target %s: writing its file failed: %s", t->name, strerror(errno));
    t->dirty = false;
}

int bh_i2c_transfer(int h, const uint32_t *e, int entries)
{
    struct bus *b = get_bus(h);
    if (!b) return -EBADF;
    if (entries < 0 || entries > BH_I2C_MAX_ENTRIES) return -EINVAL;
    /* Everything is checked before anything moves. */
    uint32_t len = 0;
    for (int k = 0; k < entries; k++) {
        const uint32_t *x = e + 4 * k;
        if (x[0] > 0x7f || (x[1] & ~(uint32_t)(I2C_M_READ | I2C_M_MORE))) return -EINVAL;
        if (!bh_window_range_ok(x[2], x[3])) return -EFAULT;
        if (k > 0 && (e[4 * (k - 1) + 1] & I2C_M_MORE) && (x[0] != e[4 * (k - 1)] || (x[1] & I2C_M_READ) != (e[4 * (k - 1) + 1] & I2C_M_READ)))
            return -EINVAL; /* a continuation must be the same message */
        len += x[3];
        if (len > BH_I2C_MAX_MESSAGE) return -EINVAL;
        if (!(x[1] & I2C_M_MORE)) len = 0;
    }
    if (entries > 0 && (e[4 * (entries - 1) + 1] & I2C_M_MORE)) return -EINVAL;
    b->transactions++;
    int done = 0;
    for (int k = 0; k < entries;) {
        int last = k;
        while (e[4 * last + 1] & I2C_M_MORE) last++;
        bool read = e[4 * k + 1] & I2C_M_READ;
        struct target *t = find(b, (int)e[4 * k]);
        size_t n = 0;
        if (!read)
            for (int j = k; j <= last; j++) {
                memcpy(msgbuf + n, bh_win.base + e[4 * j + 2], e[4 * j + 3]);
                n += e[4 * j + 3];
            }
        else
            for (int j = k; j <= last; j++) n += e[4 * j + 3];
        if (t) t->touched = true;
        if (!t || !(read ? target_read(t, msgbuf, n) : target_write(t, msgbuf, n))) {
            b->nacks++;
            break;
        }
        if (read) {
            size_t p = 0;
            for (int j = k; j <= last; j++) {
                memcpy(bh_win.base + e[4 * j + 2], msgbuf + p, e[4 * j + 3]);
                p += e[4 * j + 3];
            }
        }
        done++;
        k = last + 1;
    }
    for (int i = 0; i < b->n; i++)
        if (b->t[i].touched) {
            b->t[i].touched = false;
            target_stop(&b->t[i]);
        }
    return done;
}

void bh_i2c_log_counters(int level)
{
    for (int h = 0; h < BH_MAX_SERVICES; h++)
        if (buses[h].used) bh_log(level, "i2c service %d: %lu transactions, %lu not acknowledged", h, buses[h].transactions, buses[h].nacks);
}
