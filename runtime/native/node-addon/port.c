/*
 * bulkhead_port.node: the frontend's side of the native runtime, for Node (runtime/native/port.mjs).
 * Attaches to the ivshmem server as a peer, maps the shared memory as an external ArrayBuffer
 * (zero-copy: the backend sees our writes), rings the backend's doorbell and watches ours with a
 * libuv poll handle, so waiting costs no thread and no busy loop.
 *
 *   open(socketPath, onRing) -> { peerId, window: ArrayBuffer, handle }
 *   kick(handle) -> number of peers rung     kickPeer(handle, id)     drain(handle) -> bool
 *   peers(handle) -> number[]
 *   close(handle)
 *
 * onRing() is called (through napi_make_callback, so promise jobs run right after) each time our
 * doorbell fired; the eventfd counter is drained first, so many rings may be one call.
 * The poll handles are unref'd: an idle port never keeps node alive; a pending wait() holds a timer.
 */
#include <errno.h>
#include <node_api.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <uv.h>
#include "ivshmem-client.h"

#define BACKEND_PEER_ID_OFFSET 0x40 /* docs/window-layout.md: u16 backendPeerId */

struct port {
    struct ivs_client ivs;
    napi_env env;
    napi_ref on_ring;
    napi_async_context async;
    uv_poll_t bell_poll, sock_poll;
    uint8_t *base;
    size_t size;
    int closed;
    int handles_open;
};

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, #call " failed"); return NULL; } } while (0)

static napi_value throw_errno(napi_env env, const char *what, int err)
{
    char msg[256];
    snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
    napi_throw_error(env, NULL, msg);
    return NULL;
}

static void on_bell(uv_poll_t *h, int status, int events)
{
    struct port *p = h->data;
    if (p->closed || !ivs_drain(&p->ivs, 0)) return;
    napi_env env = p->env;
    napi_handle_scope scope;
    napi_open_handle_scope(env, &scope);
    napi_value cb, recv, result;
    napi_get_reference_value(env, p->on_ring, &cb);
    napi_get_global(env, &recv); /* make_callback needs an object receiver */
    napi_make_callback(env, p->async, recv, cb, 0, NULL, &result);
    napi_close_handle_scope(env, scope);
}

static void on_sock(uv_poll_t *h, int status, int events)
{
    struct port *p = h->data;
    if (p->closed) return;
    if (ivs_process(&p->ivs) < 0) uv_poll_stop(&p->sock_poll); /* server gone: keep the peers we know */
}

static void free_port(struct port *p)
{
    if (p->base && p->base != MAP_FAILED) munmap(p->base, p->size);
    free(p);
}

static void on_handle_closed(uv_handle_t *h)
{
    struct port *p = h->data;
    if (--p->handles_open == 0 && p->base == NULL) free_port(p);
}

/* The ArrayBuffer is the last user of the mapping: unmap only when JS can no longer reach it. */
static void finalize_window(napi_env env, void *data, void *hint)
{
    struct port *p = hint;
    munmap(p->base, p->size);
    p->base = NULL;
    if (p->handles_open == 0) free(p);
}

static void close_port(napi_env env, struct port *p)
{
    if (p->closed) return;
    p->closed = 1;
    uv_poll_stop(&p->bell_poll);
    uv_poll_stop(&p->sock_poll);
    uv_close((uv_handle_t *)&p->bell_poll, on_handle_closed);
    uv_close((uv_handle_t *)&p->sock_poll, on_handle_closed);
    ivs_close(&p->ivs);
    napi_delete_reference(env, p->on_ring);
    napi_async_destroy(env, p->async);
}

static struct port *get_port(napi_env env, napi_callback_info info, size_t *argc, napi_value *argv)
{
    napi_get_cb_info(env, info, argc, argv, NULL, NULL);
    if (*argc < 1) return NULL;
    void *ptr = NULL;
    napi_get_value_external(env, argv[0], &ptr);
    return ptr;
}

static napi_value js_open(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2];
    CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 2) { napi_throw_type_error(env, NULL, "open(socketPath, onRing)"); return NULL; }
    char path[108];
    size_t len;
    CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &len));
    struct port *p = calloc(1, sizeof *p);
    if (!p) return throw_errno(env, "open", ENOMEM);
    const char *why = "";
    int r = ivs_connect(&p->ivs, path, &why);
    if (r < 0) { free(p); char w[160]; snprintf(w, sizeof w, "ivshmem %s: %s", path, why); return throw_errno(env, w, -r); }
    if (p->ivs.my_nvec < 1) { ivs_close(&p->ivs); free(p); return throw_errno(env, "ivshmem: no doorbell vector", EPROTO); }
    struct stat st;
    fstat(p->ivs.shm_fd, &st);
    p->size = st.st_size;
    p->base = mmap(NULL, p->size, PROT_READ | PROT_WRITE, MAP_SHARED, p->ivs.shm_fd, 0);
    if (p->base == MAP_FAILED) { int e = errno; ivs_close(&p->ivs); free(p); return throw_errno(env, "mmap", e); }
    close(p->ivs.shm_fd);
    p->ivs.shm_fd = -1;
    p->env = env;
    CHECK(napi_create_reference(env, argv[1], 1, &p->on_ring));
    napi_value res_name;
    napi_create_string_utf8(env, "bulkhead:ivshmem-port", NAPI_AUTO_LENGTH, &res_name);
    CHECK(napi_async_init(env, NULL, res_name, &p->async));

    uv_loop_t *loop;
    CHECK(napi_get_uv_event_loop(env, &loop));
    uv_poll_init(loop, &p->bell_poll, p->ivs.my_efd[0]);
    uv_poll_init(loop, &p->sock_poll, p->ivs.sock);
    p->bell_poll.data = p->sock_poll.data = p;
    p->handles_open = 2;
    uv_poll_start(&p->bell_poll, UV_READABLE, on_bell);
    uv_poll_start(&p->sock_poll, UV_READABLE, on_sock);
    uv_unref((uv_handle_t *)&p->bell_poll);
    uv_unref((uv_handle_t *)&p->sock_poll);

    napi_value obj, v, ab, ext;
    CHECK(napi_create_object(env, &obj));
    CHECK(napi_create_int32(env, p->ivs.my_id, &v));
    CHECK(napi_set_named_property(env, obj, "peerId", v));
    CHECK(napi_create_external_arraybuffer(env, p->base, p->size, finalize_window, p, &ab));
    CHECK(napi_set_named_property(env, obj, "window", ab));
    CHECK(napi_create_external(env, p, NULL, NULL, &ext));
    CHECK(napi_set_named_property(env, obj, "handle", ext));
    return obj;
}

/* Rings vector 0 of the backend: the peer named in the header's backendPeerId when it is one of
 * ours, otherwise every other peer (one backend per window). */
static napi_value js_kick(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], out;
    struct port *p = get_port(env, info, &argc, argv);
    int rung = 0;
    if (p && !p->closed) {
        int id = p->base[BACKEND_PEER_ID_OFFSET] | p->base[BACKEND_PEER_ID_OFFSET + 1] << 8;
        if (id != p->ivs.my_id && ivs_find(&p->ivs, id)) rung = ivs_ring(&p->ivs, id, 0);
        else rung = ivs_ring(&p->ivs, -1, 0);
    }
    napi_create_int32(env, rung, &out);
    return out;
}

/* Rings vector 0 of one given peer (benchmarks aim at a peer that is not the backend). */
static napi_value js_kick_peer(napi_env env, napi_callback_info info)
{
    size_t argc = 2;
    napi_value argv[2], out;
    struct port *p = get_port(env, info, &argc, argv);
    int32_t id = -1;
    if (argc > 1) napi_get_value_int32(env, argv[1], &id);
    napi_create_int32(env, p && !p->closed && id >= 0 ? ivs_ring(&p->ivs, id, 0) : 0, &out);
    return out;
}

static napi_value js_drain(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], out;
    struct port *p = get_port(env, info, &argc, argv);
    napi_get_boolean(env, p && !p->closed && ivs_drain(&p->ivs, 0), &out);
    return out;
}

static napi_value js_peers(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1], arr, v;
    struct port *p = get_port(env, info, &argc, argv);
    napi_create_array(env, &arr);
    uint32_t n = 0;
    if (p && !p->closed) {
        ivs_process(&p->ivs);
        for (int i = 0; i < BH_MAX_PEERS; i++)
            if (p->ivs.peers[i].id >= 0) {
                napi_create_int32(env, p->ivs.peers[i].id, &v);
                napi_set_element(env, arr, n++, v);
            }
    }
    return arr;
}

static napi_value js_close(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    struct port *p = get_port(env, info, &argc, argv);
    if (p) close_port(env, p);
    return NULL;
}

NAPI_MODULE_INIT()
{
    static const struct { const char *name; napi_callback fn; } fns[] = {
        { "open", js_open }, { "kick", js_kick }, { "kickPeer", js_kick_peer }, { "drain", js_drain }, { "peers", js_peers }, { "close", js_close },
    };
    for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
        napi_value f;
        napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f);
        napi_set_named_property(env, exports, fns[i].name, f);
    }
    return exports;
}
