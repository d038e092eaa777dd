/*
 * Batched reads of many sockets: one call into JavaScript per turn of the event
 * loop instead of one per read (src/rtmp/socket-input.ts, NativeSocketReader).
 *
 * Node.js reads a socket with read(2) into a buffer, then enters JavaScript
 * once per read (the stream handle's onread, the socket's stream bookkeeping,
 * the user's callback, a microtask checkpoint). A publisher makes about one
 * read per message, so with hundreds of publishers that entry costs more than
 * the processing of the message. A poller watches descriptors with libuv's
 * uv_poll (the loop Node.js runs, napi_get_uv_event_loop), reads each ready one
 * with one recv(2) into the next free part of a batch buffer, and hands the
 * batch to one JavaScript callback: in the loop's check phase (right after the
 * poll phase that made the reads), or at once when the batch buffer or its
 * entry table is full.
 *
 *   createPoller(buffer: Buffer, meta: Int32Array, onBatch: (count) => void): poller
 *
 * buffer: where reads land (each read gets at most READ_MAX bytes, at the next
 * free offset); meta: the batch's entries, three int32 each: token, result,
 * offset. result > 0: that many bytes at buffer[offset..); 0: the peer closed
 * (end of stream); < 0: -errno (ECONNRESET...). After an end or an error the
 * descriptor is no longer watched (it stays open until unwatch). onBatch(count)
 * gets the number of entries; the buffer and the entries are valid only until
 * it returns (they are reused for the next batch).
 *
 *   pollerWatch(poller, fd: number, token: number): void
 *
 * Watches fd for reads; its entries carry `token` (0 <= token < 2^20, unique
 * among the poller's watched descriptors). The poller owns fd from now on:
 * it closes it on unwatch. Throws ERR_NATIVE_POLL (errno's text) when libuv
 * refuses (the descriptor is not open, or already watched in this loop); fd is
 * then not owned (the caller closes it).
 *
 *   pollerUnwatch(poller, token: number): void
 *
 * Stops reading, forgets the batch's pending entries of token (they become
 * token -1, which the callback skips), and closes the descriptor once libuv
 * has released it. An unknown token is ignored. Callable from onBatch.
 *
 *   pollerClose(poller): void
 *
 * Unwatches everything and stops the check handle: the poller is done (later
 * calls throw).
 *
 * Contract with the caller (asserted on its side): a descriptor given to
 * pollerWatch is a dup(2) the caller made for the poller alone; nothing else
 * reads or closes it. So its number cannot be reused while it is watched, and
 * the socket it names lives on (no FIN) until pollerUnwatch closes it.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "reader.h"

/* the most one recv(2) reads, as libuv's own reads */
#define READ_MAX (64 * 1024)
#define ENTRY_INTS 3
#define MAX_TOKEN (1 << 20)

typedef struct poller poller;

typedef struct {
  uv_poll_t handle;
  poller *owner;
  int fd;
  int32_t token;
} watcher;

struct poller {
  napi_env env;
  uv_loop_t *loop;
  uv_check_t check;
  napi_ref buffer_ref;
  napi_ref meta_ref;
  napi_ref callback_ref;
  napi_async_context context;
  char *buf;
  size_t buf_len;
  int32_t *meta;
  size_t max_entries;
  size_t used;
  size_t count;
  /* watchers by token; NULL where none */
  watcher **watchers;
  size_t watchers_len;
  int delivering;
  int closed;
  /* the check handle is closed / the external was collected: p is freed when both are */
  int check_closed;
  int collected;
};

static int flush_batch(poller *p);

static void on_watcher_closed(uv_handle_t *h) {
  watcher *w = (watcher *)h->data;
  close(w->fd);
  free(w);
}

static void stop_watcher(poller *p, watcher *w) {
  p->watchers[w->token] = NULL;
  /* the batch's pending entries of this token are forgotten */
  for (size_t i = 0; i < p->count; i++) {
    if (p->meta[i * ENTRY_INTS] == w->token) p->meta[i * ENTRY_INTS] = -1;
  }
  uv_poll_stop(&w->handle);
  uv_close((uv_handle_t *)&w->handle, on_watcher_closed);
}

static void add_entry(poller *p, int32_t token, int32_t result, size_t offset) {
  int32_t *e = p->meta + p->count * ENTRY_INTS;
  e[0] = token;
  e[1] = result;
  e[2] = (int32_t)offset;
  p->count++;
}

static void on_readable(uv_poll_t *h, int status, int events) {
  watcher *w = (watcher *)h->data;
  poller *p = w->owner;
  (void)events;
  if (p->buf_len - p->used < READ_MAX || p->count == p->max_entries) {
    /* no room for a full read: the batch goes now (the callback may unwatch w itself) */
    if (!flush_batch(p)) return;
    if (p->watchers[w->token] != w) return;
  }
  /* libuv reports an error condition of the socket (EPOLLERR) as status UV_EBADF and stops the handle:
     the recv(2) below then gets the data still queued, or the socket's own error (ECONNRESET...) */
  ssize_t r;
  do r = recv(w->fd, p->buf + p->used, READ_MAX, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (status < 0) add_entry(p, w->token, status, p->used);
      return;
    }
    add_entry(p, w->token, errno > 0 ? -errno : -EIO, p->used);
    uv_poll_stop(h);
    return;
  }
  add_entry(p, w->token, (int32_t)r, p->used);
  if (r == 0) {
    uv_poll_stop(h);
    return;
  }
  /* data before the error: read on (the error comes with a later read) */
  if (status < 0) uv_poll_start(h, UV_READABLE, on_readable);
  /* the next read starts on an 8-byte boundary */
  p->used += ((size_t)r + 7) & ~(size_t)7;
}

/* Hands the batch to JavaScript; 0 when the callback threw (reported as an uncaught exception) or the poller closed. */
static int flush_batch(poller *p) {
  if (p->count == 0 || p->delivering) return !p->closed;
  napi_env env = p->env;
  napi_handle_scope scope;
  if (napi_open_handle_scope(env, &scope) != napi_ok) return 0;
  napi_value cb, recv, argv[1], result;
  int ok = napi_get_reference_value(env, p->callback_ref, &cb) == napi_ok && napi_get_global(env, &recv) == napi_ok &&
           napi_create_uint32(env, (uint32_t)p->count, &argv[0]) == napi_ok;
  p->delivering = 1;
  napi_status s = ok ? napi_make_callback(env, p->context, recv, cb, 1, argv, &result) : napi_generic_failure;
  p->delivering = 0;
  p->count = 0;
  p->used = 0;
  /* the callback threw (a bug: the JavaScript side catches what it expects): an uncaught exception, as from any callback */
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value err;
    if (napi_get_and_clear_last_exception(env, &err) == napi_ok) napi_fatal_exception(env, err);
  }
  napi_close_handle_scope(env, scope);
  return s == napi_ok && !p->closed;
}

static void on_check(uv_check_t *h) {
  poller *p = (poller *)h->data;
  flush_batch(p);
}

static void on_check_closed(uv_handle_t *h) {
  poller *p = (poller *)h->data;
  free(p->watchers);
  p->watchers = NULL;
  p->watchers_len = 0;
  p->check_closed = 1;
  if (p->collected) free(p);
}

/* The external's finalizer: a poller collected while open stays (its handles point at it); one closed is freed. */
static void on_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller *p = (poller *)data;
  p->collected = 1;
  if (p->check_closed) free(p);
}

static int get_poller(napi_env env, napi_value v, poller **out) {
  void *data;
  if (napi_get_value_external(env, v, &data) != napi_ok || data == NULL) return 0;
  *out = (poller *)data;
  return !(*out)->closed;
}

static napi_value CreatePoller(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  void *buf;
  size_t buf_len;
  bool is_buffer;
  napi_typedarray_type type;
  size_t meta_len;
  void *meta;
  napi_value ab;
  size_t off;
  napi_valuetype cb_type;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_is_buffer(env, argv[0], &is_buffer) != napi_ok || !is_buffer ||
      napi_get_buffer_info(env, argv[0], &buf, &buf_len) != napi_ok || buf_len < READ_MAX ||
      napi_get_typedarray_info(env, argv[1], &type, &meta_len, &meta, &ab, &off) != napi_ok || type != napi_int32_array ||
      meta_len < ENTRY_INTS || napi_typeof(env, argv[2], &cb_type) != napi_ok || cb_type != napi_function) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "createPoller(buffer: Buffer of at least 64 KiB, meta: Int32Array, onBatch: function)");
    return NULL;
  }
  uv_loop_t *loop;
  if (napi_get_uv_event_loop(env, &loop) != napi_ok) {
    napi_throw_error(env, "ERR_NATIVE_POLL", "no event loop");
    return NULL;
  }
  poller *p = calloc(1, sizeof *p);
  if (p == NULL) {
    napi_throw_error(env, "ERR_NATIVE_MEMORY", "createPoller: out of memory");
    return NULL;
  }
  p->env = env;
  p->loop = loop;
  p->buf = buf;
  p->buf_len = buf_len;
  p->meta = meta;
  p->max_entries = meta_len / ENTRY_INTS;
  napi_value name, external;
  if (napi_create_reference(env, argv[0], 1, &p->buffer_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &p->meta_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &p->callback_ref) != napi_ok ||
      napi_create_string_utf8(env, "rtmp-server:reads", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &p->context) != napi_ok || napi_create_external(env, p, on_collected, NULL, &external) != napi_ok) {
    free(p);
    napi_throw_error(env, "ERR_NATIVE_POLL", "createPoller: N-API failure");
    return NULL;
  }
  uv_check_init(loop, &p->check);
  p->check.data = p;
  uv_check_start(&p->check, on_check);
  /* the sockets keep the loop alive, not the poller */
  uv_unref((uv_handle_t *)&p->check);
  return external;
}

static napi_value PollerWatch(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  poller *p;
  int32_t fd, token;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || !get_poller(env, argv[0], &p) ||
      napi_get_value_int32(env, argv[1], &fd) != napi_ok || fd < 0 || napi_get_value_int32(env, argv[2], &token) != napi_ok ||
      token < 0 || token >= MAX_TOKEN) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "pollerWatch(poller: an open poller, fd: a descriptor, token: 0..2^20-1)");
    return NULL;
  }
  if ((size_t)token < p->watchers_len && p->watchers[token] != NULL) {
    napi_throw_error(env, "ERR_NATIVE_POLL", "pollerWatch: token already watched");
    return NULL;
  }
  if ((size_t)token >= p->watchers_len) {
    size_t n = p->watchers_len == 0 ? 256 : p->watchers_len;
    while (n <= (size_t)token) n *= 2;
    watcher **grown = realloc(p->watchers, n * sizeof *grown);
    if (grown == NULL) {
      napi_throw_error(env, "ERR_NATIVE_MEMORY", "pollerWatch: out of memory");
      return NULL;
    }
    memset(grown + p->watchers_len, 0, (n - p->watchers_len) * sizeof *grown);
    p->watchers = grown;
    p->watchers_len = n;
  }
  watcher *w = calloc(1, sizeof *w);
  if (w == NULL) {
    napi_throw_error(env, "ERR_NATIVE_MEMORY", "pollerWatch: out of memory");
    return NULL;
  }
  int r = uv_poll_init(p->loop, &w->handle, fd);
  if (r == 0) {
    w->handle.data = w;
    w->owner = p;
    w->fd = fd;
    w->token = token;
    r = uv_poll_start(&w->handle, UV_READABLE, on_readable);
    if (r != 0) {
      /* fd is the caller's again; the handle is closed without closing it */
      w->fd = -1;
      uv_close((uv_handle_t *)&w->handle, (uv_close_cb)free);
    }
  } else {
    free(w);
  }
  if (r != 0) {
    napi_throw_error(env, "ERR_NATIVE_POLL", uv_strerror(r));
    return NULL;
  }
  /* a watched socket keeps the loop alive, as a socket Node.js reads does (its own handle, never reading, does not) */
  p->watchers[token] = w;
  return NULL;
}

static napi_value PollerUnwatch(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  poller *p;
  int32_t token;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !get_poller(env, argv[0], &p) ||
      napi_get_value_int32(env, argv[1], &token) != napi_ok) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "pollerUnwatch(poller: an open poller, token: number)");
    return NULL;
  }
  if (token >= 0 && (size_t)token < p->watchers_len && p->watchers[token] != NULL) stop_watcher(p, p->watchers[token]);
  return NULL;
}

static napi_value PollerClose(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  poller *p;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || !get_poller(env, argv[0], &p)) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "pollerClose(poller: an open poller)");
    return NULL;
  }
  for (size_t t = 0; t < p->watchers_len; t++) {
    if (p->watchers[t] != NULL) stop_watcher(p, p->watchers[t]);
  }
  p->closed = 1;
  p->count = 0;
  napi_delete_reference(env, p->buffer_ref);
  napi_delete_reference(env, p->meta_ref);
  napi_delete_reference(env, p->callback_ref);
  napi_async_destroy(env, p->context);
  p->buf = NULL;
  p->meta = NULL;
  uv_check_stop(&p->check);
  /* p itself stays until the external is collected too (on_collected): later calls see it closed */
  uv_close((uv_handle_t *)&p->check, on_check_closed);
  return NULL;
}

int reader_init(napi_env env, napi_value exports) {
  static const struct {
    const char *name;
    napi_callback cb;
  } fns[] = {
      {"createPoller", CreatePoller},
      {"pollerWatch", PollerWatch},
      {"pollerUnwatch", PollerUnwatch},
      {"pollerClose", PollerClose},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok) return 0;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return 0;
  }
  return 1;
}
