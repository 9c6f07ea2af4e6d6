/*
 * bulkhead-fw: the native partition firmware. Loads a partition image (or, for development, a
 * bundle and a board), attaches to the shared window, boots the bundle in QuickJS behind the Board
 * HAL, locks itself down (capabilities, no_new_privs, seccomp) and serves from one event loop.
 * See docs/native.md.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <mbedtls/sha256.h>
#include "image.h"
#include "loop.h"
#include "trace.h"

#if defined(__x86_64__)
#define BH_ARCH "x86_64"
#elif defined(__aarch64__)
#define BH_ARCH "aarch64"
#endif

#define ENGINE "quickjs-" BH_QJS_VERSION

static const char usage[] =
    "usage: bulkhead-fw IMAGE --board BOARD (--ivshmem SOCKET | --shm PATH | --uio DEV) [options]\n"
    "       bulkhead-fw --bundle FILE.js --board BOARD (--ivshmem SOCKET | --shm PATH | --uio DEV) [options]\n"
    "       bulkhead-fw --compile FILE.js -o OUT.bc\n"
    "       bulkhead-fw --check IMAGE [--board BOARD]\n"
    "       bulkhead-fw --replay TRACE --bundle FILE.js   (one JSON verdict line; `bulkhead replay` renders it)\n"
    "       bulkhead-fw --version\n"
    "options:\n"
    "  --board FILE|NAME      board definition (a NAME means boards/NAME.json); with an image, the\n"
    "                         board this partition is: the image must be built for it\n"
    "  --ivshmem SOCKET       attach as a peer of an ivshmem server; its shared memory is the window\n"
    "  --shm PATH             no server: map PATH (created and sized as needed) as the window, no doorbells\n"
    "  --uio /dev/uioN        inside a VM: an ivshmem-doorbell device bound to bulkhead_uio.ko is the window\n"
    "  --service NAME=VALUE   backing override: storage PATH[,ro][,direct][,sync|,async] (or ro:PATH):\n"
    "                         direct opens it O_DIRECT; async (the default) serves it with io_uring or\n"
    "                         a thread pool, sync with blocking calls; stream stdio|null|pty|unix:PATH;\n"
    "                         packet tap:IFNAME|switch:NAME; gpio unix:PATH (control socket); an i2c\n"
    "                         target's name: PATH (a 24c02's file)\n"
    "  --aio auto|threads|uring  asynchronous storage engine: auto (the default) runs requests on a\n"
    "                         memory-backed image (tmpfs) inline, others on io_uring where the kernel\n"
    "                         allows it, else on the thread pool; threads always the thread pool;\n"
    "                         uring io_uring for every image (also BULKHEAD_AIO=threads|uring)\n"
    "  --busy-poll US         after each event keep polling (no sleep) for US microseconds before\n"
    "                         sleeping again: lower doorbell latency for a core that polls\n"
    "                         (default: the board's runtime.busyPollUs, else 0 = never poll)\n"
    "  --record FILE          write a trace of everything that enters the firmware (docs/trace-format.md)\n"
    "  --log-level N          0 error, 1 warn, 2 info (default), 3 debug\n"
    "  --no-seccomp           run without the syscall filter (debugging; qemu-user cannot filter)\n";

static char *read_board(const char *arg)
{
    char path[4096];
    if (strchr(arg, '/') || strstr(arg, ".json")) snprintf(path, sizeof path, "%s", arg);
    else snprintf(path, sizeof path, "boards/%s.json", arg);
    size_t len;
    char *s = (char *)bh_read_file(path, &len);
    if (!s) bh_die("cannot read board %s: %s", path, strerror(errno));
    return s;
}

static int compile(const char *in, const char *out)
{
    size_t len, bc_len;
    char err[512];
    uint8_t *src = bh_read_file(in, &len);
    if (!src) bh_die("cannot read %s: %s", in, strerror(errno));
    uint8_t *bc = bh_js_compile((const char *)src, len, in, &bc_len, err, sizeof err);
    if (!bc) bh_die("%s: %s", in, err);
    int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0 || write(fd, bc, bc_len) != (ssize_t)bc_len || close(fd) < 0) bh_die("cannot write %s: %s", out, strerror(errno));
    return 0;
}

/* --shm: a file (e.g. /dev/shm/NAME) as the window; sized up to the board's window if smaller. */
static void map_shm_path(const char *path, size_t size)
{
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) bh_die("--shm %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) == 0 && (size_t)st.st_size < size && ftruncate(fd, size) < 0)
        bh_die("--shm %s: cannot size to %zu bytes: %s", path, size, strerror(errno));
    bh_window_map_fd(fd, size);
    close(fd);
}

/* Test hook: proves the filter is live by making a syscall it must refuse. */
static int selftest_seccomp(void)
{
    int r = bh_seccomp_install();
    if (r < 0) bh_die("seccomp: cannot install the filter: %s", strerror(-r));
    syscall(SYS_socket, 2 /* AF_INET */, 1 /* SOCK_STREAM */, 0);
    bh_die("seccomp: socket() was not stopped");
}

int main(int argc, char **argv)
{
    const char *image_path = NULL, *bundle = NULL, *board_arg = NULL, *ivshmem = NULL, *shm = NULL, *uio = NULL;
    const char *compile_in = NULL, *compile_out = NULL, *record = NULL, *replay = NULL;
    bool check_only = false, use_seccomp = true, aio_flag = false;
    double busy_poll_us = -1; /* -1: the board's */

    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define TAKE(var) do { if (!v) bh_die("%s needs a value", a); var = v; i++; } while (0)
        if (!strcmp(a, "--bundle")) TAKE(bundle);
        else if (!strcmp(a, "--board")) TAKE(board_arg);
        else if (!strcmp(a, "--ivshmem")) TAKE(ivshmem);
        else if (!strcmp(a, "--shm")) TAKE(shm);
        else if (!strcmp(a, "--uio")) TAKE(uio);
        else if (!strcmp(a, "--compile")) TAKE(compile_in);
        else if (!strcmp(a, "-o")) TAKE(compile_out);
        else if (!strcmp(a, "--check")) { TAKE(image_path); check_only = true; }
        else if (!strcmp(a, "--record")) TAKE(record);
        else if (!strcmp(a, "--replay")) TAKE(replay);
        else if (!strcmp(a, "--service")) {
            const char *s;
            TAKE(s);
            if (bh_services_override(s) < 0) bh_die("--service %s: expected NAME=VALUE", s);
        } else if (!strcmp(a, "--busy-poll")) {
            const char *s;
            TAKE(s);
            char *end;
            busy_poll_us = strtod(s, &end);
            if (end == s || *end || !(busy_poll_us >= 0 && busy_poll_us <= 1e6)) bh_die("--busy-poll %s: expected microseconds, 0 to 1000000", s);
        } else if (!strcmp(a, "--aio")) {
            const char *s;
            TAKE(s);
            if (!strcmp(s, "threads")) bh_storage_aio_mode = BH_AIO_ENGINE_THREADS;
            else if (!strcmp(s, "uring")) bh_storage_aio_mode = BH_AIO_ENGINE_URING;
            else if (!strcmp(s, "auto")) bh_storage_aio_mode = BH_AIO_ENGINE_AUTO;
            else bh_die("--aio %s: expected auto, threads or uring", s);
            aio_flag = true;
        } else if (!strcmp(a, "--log-level")) { const char *s; TAKE(s); bh_log_level = atoi(s); }
        else if (!strcmp(a, "--no-seccomp")) use_seccomp = false;
        else if (!strcmp(a, "--selftest-seccomp")) return selftest_seccomp();
        else if (!strcmp(a, "--version")) {
            printf("bulkhead-fw abi %d engine %s arch %s\n", BH_ABI, ENGINE, BH_ARCH);
            return 0;
        } else if (!strcmp(a, "-h") || !strcmp(a, "--help")) { fputs(usage, stdout); return 0; }
        else if (a[0] != '-' && !image_path) image_path = a;
        else { fputs(usage, stderr); bh_die("unknown argument %s", a); }
#undef TAKE
    }
    const char *aio_env = getenv("BULKHEAD_AIO");
    if (aio_env && !aio_flag) {
        if (!strcmp(aio_env, "threads")) bh_storage_aio_mode = BH_AIO_ENGINE_THREADS;
        else if (!strcmp(aio_env, "uring")) bh_storage_aio_mode = BH_AIO_ENGINE_URING;
    }
    if (compile_in) {
        if (!compile_out) bh_die("--compile needs -o OUT");
        return compile(compile_in, compile_out);
    }
    if (replay) {
        if (!bundle) bh_die("--replay needs --bundle FILE.js (the firmware to check against the trace)");
        bh_trace_mode = BH_TRACE_REPLAY;
        static const struct bh_trace_js js = { bh_js_init, bh_js_install_hal, bh_js_load, bh_js_call, bh_js_stats };
        return bh_trace_replay(replay, bundle, &js);
    }
    if (!!image_path == !!bundle) { fputs(usage, stderr); bh_die("give an IMAGE or --bundle FILE"); }
    if (!board_arg && !check_only) bh_die("--board is required: the board this partition runs on");
    signal(SIGPIPE, SIG_IGN);

    /* 1. The code and the board: an image is verified completely before anything in it is used. */
    const uint8_t *code;
    size_t code_len;
    bool bytecode = false;
    char *board_json;
    struct bh_image img;
    if (image_path) {
        const char *why = bh_image_load(image_path, &img);
        if (why) bh_die("%s", why);
        board_json = bh_json_member(img.manifest, img.manifest_len, "board");
        char *engine = bh_json_member(img.manifest, img.manifest_len, "engine");
        if (!board_json) bh_die("image manifest has no board");
        char *manifest_id = bh_json_member(board_json, strlen(board_json), "id");
        if (!manifest_id || (uint32_t)strtoul(manifest_id, NULL, 10) != img.board_id)
            bh_die("image header says board id %u, its manifest says %s", img.board_id, manifest_id ? manifest_id : "none");
        if (board_arg) {
            char *mine = read_board(board_arg);
            char *id_s = bh_json_member(mine, strlen(mine), "id"), *name = bh_json_member(mine, strlen(mine), "name");
            if (!id_s || (uint32_t)strtoul(id_s, NULL, 10) != img.board_id) {
                char *iname = bh_json_member(board_json, strlen(board_json), "name");
                bh_die("image is for board %s (id %u), this partition is board %s (id %s)", iname ? iname : "?",
                       img.board_id, name ? name : "?", id_s ? id_s : "?");
            }
        }
        if (img.bytecode && (!engine || strcmp(engine, ENGINE) != 0))
            bh_die("image bytecode is for %s, this runtime is %s", engine ? engine : "an unknown engine", ENGINE);
        code = img.firmware;
        code_len = img.firmware_len;
        bytecode = img.bytecode;
        if (check_only) {
            printf("ok: board id %u, %s %zu bytes, manifest %.*s\n", img.board_id, bytecode ? "bytecode" : "source",
                   code_len, (int)img.manifest_len, img.manifest);
            return 0;
        }
    } else {
        size_t len;
        code = bh_read_file(bundle, &code_len);
        if (!code) bh_die("cannot read %s: %s", bundle, strerror(errno));
        board_json = read_board(board_arg);
        (void)len;
    }
    struct bh_board board;
    bh_js_init(board_json, &board);
    bh_lines_set_board(board.to_frontend, board.from_frontend);

    /* 2. The window and the doorbells. */
    static struct ivs_client ivs;
    bool have_ivs = false;
    if (ivshmem) {
        const char *why = "";
        int r = ivs_connect(&ivs, ivshmem, &why);
        if (r < 0) bh_die("ivshmem %s: %s: %s", ivshmem, why, strerror(-r));
        if (ivs.my_nvec < 1) bh_die("ivshmem %s: the server gave us no doorbell vector", ivshmem);
        bh_window_map_fd(ivs.shm_fd, (size_t)board.window_size);
        close(ivs.shm_fd); /* the mapping stays; the fd is not needed any more */
        ivs.shm_fd = -1;
        bh_lines_init_ivshmem(&ivs);
        have_ivs = true;
    } else if (shm) {
        map_shm_path(shm, (size_t)board.window_size);
    } else if (uio) {
        bh_uio_attach(uio, (size_t)board.window_size);
    } else {
        bh_die("give --ivshmem SOCKET, --shm PATH or --uio DEV: the runtime needs a window");
    }
    bh_loop_init(have_ivs ? &ivs : NULL);
    bh_loop_set_busy_poll(busy_poll_us >= 0 ? busy_poll_us : board.busy_poll_us);
    bh_loop_watch_doorbell();

    /* 3. Boot: __hal, the bundle (which opens its services), start(). */
    if (record) {
        uint8_t sha[32];
        mbedtls_sha256_ret(code, code_len, sha, 0);
        bh_trace_record_open(record);
        bh_trace_record_begin(bh_js_board_json(), sha, bytecode, bh_lines_peer_id());
    }
    bh_js_install_hal();
    bh_js_load(code, code_len, bytecode, image_path ? image_path : bundle);
    bh_js_call("start", 0, NULL);
    bh_log(BH_LOG_INFO, "board %s (id %d) running, peer id %d, engine %s %s", board.name, board.id,
           bh_lines_peer_id(), ENGINE, BH_ARCH);

    /* 4. Lock down, then serve. */
    if (use_seccomp) {
        int r = bh_seccomp_install();
        if (r < 0) bh_die("seccomp: cannot install the filter (%s); --no-seccomp runs without it", strerror(-r));
    }
    return bh_loop_run();
}
