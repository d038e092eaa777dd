/*
 * Batched reads of many sockets: one call into JavaScript per turn of the event
 * loop instead of one per read (src/rtmp/socket-input.ts, NativeSocketReader).
 *
 * Node.js reads a socket with read(2) into a buffer, then enters JavaScript
 * once per read (the stream handle's onread, the socket's stream bookkeeping,
 * the user's callback, a microtask checkpoint). A publisher makes about one
 * read per message, so with hundreds of publishers that entry costs more than
 * the processing of the message. A poller watches descriptors on the loop
 * Node.js runs (napi_get_uv_event_loop; how: below), reads each ready one
 * with one recv(2) into the next free part of a batch buffer, and hands the
 * batch to one JavaScript callback: in the loop's check phase (right after the
 * poll phase that made the reads), at the end of a read window (below), or at
 * once when the batch buffer or its entry table is full.
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
 * it closes it on unwatch. Throws ERR_NATIVE_POLL (errno's text) when epoll
 * refuses (the descriptor is not open, is not pollable, or is already in the
 * poller's set); fd is then not owned (the caller closes it).
 *
 *   pollerUnwatch(poller, token: number): void
 *
 * Stops reading, forgets the batch's pending entries of token (they become
 * token -1, which the callback skips), and closes the descriptor. An unknown token is ignored. Callable from onBatch.
 *
 *   pollerSetWindow(poller, ms: number): void
 *
 * The read window (0..1000 ms; 0, the start, turns it off). With a window,
 * the first descriptor that becomes readable does not wake the loop for its
 * own read: the poller stops listening for ms milliseconds, then reads every
 * descriptor that is ready by then and hands that batch to onBatch at once
 * (from the timer). While windows keep finding reads, the next one starts
 * right away; one that finds none listens again. Reads wait at most ms
 * longer; the loop wakes at most once a window for them instead of once per
 * arrival. Setting 0 ends an open window at once. The policy that turns it on
 * and off is the caller's (src/rtmp/socket-input.ts, ReadWindow).
 *
 *   pollerClose(poller): void
 *
 * Unwatches everything and stops the poller's handles: the poller is done
 * (later calls throw).
 *
 * How: the watched descriptors are in an epoll set of the poller's own
 * (level-triggered EPOLLIN), and that set's descriptor is the one thing the
 * poller watches in libuv's loop (uv_poll). When it is readable, the poller
 * asks its set which descriptors are ready (epoll_wait with no timeout) and
 * makes one recv(2) on each; with a window it first stops watching the set and
 * starts a timer. Linux only (epoll): elsewhere the addon has no poller and
 * the server uses the shared read buffer instead.
 *
 * Contract with the caller (asserted on its side): a descriptor given to
 * pollerWatch is a dup(2) the caller made for the poller alone; nothing else
 * reads or closes it. So its number cannot be reused while it is watched, and
 * the socket it names lives on (no FIN) until pollerUnwatch closes it.
 */
#define NAPI_VERSION 8
#include <node_api.h>
#include <uv.h>

#ifdef __linux__

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <unistd.h>

#include "reader.h"

/* the most one recv(2) reads, as libuv's own reads */
#define READ_MAX (64 * 1024)
#define ENTRY_INTS 3
#define MAX_TOKEN (1 << 20)
/* ready descriptors taken from the poller's epoll set per epoll_wait(2) */
#define EVENTS_MAX 512
/* the longest read window pollerSetWindow accepts */
#define WINDOW_MAX_MS 1000

typedef struct poller poller;

typedef struct {
  int fd;
  int32_t token;
  /* in the poller's epoll set (until unwatched, or the peer's end or an error) */
  int listening;
} watcher;

struct poller {
  napi_env env;
  uv_loop_t *loop;
  /* delivers the reads of the poll phase */
  uv_check_t check;
  /* the epoll set's descriptor, watched in libuv's loop */
  uv_poll_t set_watch;
  /* the read window */
  uv_timer_t window;
  int epfd;
  uint64_t window_ms;
  /* the window's timer runs (set_watch is stopped meanwhile) */
  int window_open;
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
  /* watchers in the epoll set: while there is one, the poller keeps the loop alive */
  size_t listening;
  int delivering;
  int closed;
  /* handles not yet closed (check, set_watch, window): p is freed when none is left and the external was collected */
  int open_handles;
  int collected;
};

static int flush_batch(poller *p);
static void on_set_readable(uv_poll_t *h, int status, int events);

/* a watched descriptor keeps the loop alive, as a socket Node.js reads does (its own handle, never reading, does not) */
static void update_refs(poller *p) {
  if (p->listening > 0) {
    uv_ref((uv_handle_t *)&p->set_watch);
    uv_ref((uv_handle_t *)&p->window);
  } else {
    uv_unref((uv_handle_t *)&p->set_watch);
    uv_unref((uv_handle_t *)&p->window);
  }
}

/* takes w out of the epoll set (its descriptor stays open) */
static void stop_listening(poller *p, watcher *w) {
  if (!w->listening) return;
  w->listening = 0;
  epoll_ctl(p->epfd, EPOLL_CTL_DEL, w->fd, NULL);
  p->listening--;
  update_refs(p);
}

static void stop_watcher(poller *p, watcher *w) {
  p->watchers[w->token] = NULL;
  /* the batch's pending entries of this token are forgotten */
  for (size_t i = 0; i < p->count; i++) {
    if (p->meta[i * ENTRY_INTS] == w->token) p->meta[i * ENTRY_INTS] = -1;
  }
  stop_listening(p, w);
  close(w->fd);
  free(w);
}

static void add_entry(poller *p, int32_t token, int32_t result, size_t offset) {
  int32_t *e = p->meta + p->count * ENTRY_INTS;
  e[0] = token;
  e[1] = result;
  e[2] = (int32_t)offset;
  p->count++;
}

/* One recv(2) of a ready descriptor into the batch; 0 when the poller closed meanwhile. */
static int read_one(poller *p, watcher *w, uint32_t events) {
  int32_t token = w->token;
  if (p->buf_len - p->used < READ_MAX || p->count == p->max_entries) {
    /* no room for a full read: the batch goes now (the callback may unwatch w itself) */
    if (!flush_batch(p)) return !p->closed;
    if (p->watchers[token] != w) return 1;
  }
  ssize_t r;
  do r = recv(w->fd, p->buf + p->used, READ_MAX, MSG_DONTWAIT);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    int e = errno;
    if (e == EAGAIN || e == EWOULDBLOCK) {
      if (!(events & EPOLLERR)) return 1;
      /* an error condition without a pending error for recv: SO_ERROR says which */
      int soerr = 0;
      socklen_t len = sizeof soerr;
      e = getsockopt(w->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) == 0 && soerr > 0 ? soerr : EIO;
    }
    add_entry(p, token, e > 0 ? -e : -EIO, p->used);
    stop_listening(p, w);
    return 1;
  }
  add_entry(p, token, (int32_t)r, p->used);
  if (r == 0) {
    stop_listening(p, w);
    return 1;
  }
  /* the next read starts on an 8-byte boundary */
  p->used += ((size_t)r + 7) & ~(size_t)7;
  return 1;
}

/* One recv(2) on each descriptor of the epoll set that is ready now; how many were ready. */
static int read_ready(poller *p) {
  struct epoll_event events[EVENTS_MAX];
  int n;
  do n = epoll_wait(p->epfd, events, EVENTS_MAX, 0);
  while (n < 0 && errno == EINTR);
  for (int i = 0; i < n; i++) {
    uint32_t token = events[i].data.u32;
    /* unwatched by a batch delivered meanwhile (or its token given to another descriptor: recv finds nothing or reads it, both fine) */
    watcher *w = token < p->watchers_len ? p->watchers[token] : NULL;
    if (w == NULL || !w->listening) continue;
    if (!read_one(p, w, events[i].events)) break;
  }
  return n > 0 ? n : 0;
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

/*
 * The window is over: read what is ready and deliver it. While reads keep
 * coming (this window had some), the next window starts at once and the set
 * stays unwatched, as a network driver polls while packets keep arriving: no
 * epoll_ctl(2) per window (stopping and restarting the watch is a DEL and an
 * ADD, with the kernel's loop check for an epoll set in an epoll set). A
 * window that found nothing ends it: the set is watched again and the loop may
 * sleep until the next arrival.
 */
static void on_window(uv_timer_t *t) {
  poller *p = (poller *)t->data;
  p->window_open = 0;
  if (p->closed) return;
  int ready = read_ready(p);
  if (!p->closed) flush_batch(p);
  if (p->closed) return;
  if (ready > 0 && p->window_ms > 0) {
    p->window_open = 1;
    uv_timer_start(&p->window, on_window, p->window_ms, 0);
  } else {
    uv_poll_start(&p->set_watch, UV_READABLE, on_set_readable);
  }
}

static void on_set_readable(uv_poll_t *h, int status, int events) {
  poller *p = (poller *)h->data;
  (void)status;
  (void)events;
  if (p->window_ms > 0) {
    /* the reads wait for the window: the loop does not wake for the arrivals meanwhile */
    uv_poll_stop(&p->set_watch);
    p->window_open = 1;
    uv_timer_start(&p->window, on_window, p->window_ms, 0);
    return;
  }
  /* delivered in the check phase, right after this poll phase */
  read_ready(p);
}

static void on_check(uv_check_t *h) {
  poller *p = (poller *)h->data;
  flush_batch(p);
}

static void on_handle_closed(uv_handle_t *h) {
  poller *p = (poller *)h->data;
  if (h == (uv_handle_t *)&p->set_watch) {
    /* libuv no longer watches the set: its descriptor can go */
    close(p->epfd);
    p->epfd = -1;
  }
  if (--p->open_handles > 0) return;
  free(p->watchers);
  p->watchers = NULL;
  p->watchers_len = 0;
  if (p->collected) free(p);
}

/* The external's finalizer: a poller collected while open stays (its handles point at it); one closed is freed. */
static void on_collected(napi_env env, void *data, void *hint) {
  (void)env;
  (void)hint;
  poller *p = (poller *)data;
  p->collected = 1;
  if (p->closed && p->open_handles == 0) free(p);
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
  int epfd = epoll_create1(EPOLL_CLOEXEC);
  if (epfd < 0) {
    napi_throw_error(env, "ERR_NATIVE_POLL", strerror(errno));
    return NULL;
  }
  poller *p = calloc(1, sizeof *p);
  if (p == NULL) {
    close(epfd);
    napi_throw_error(env, "ERR_NATIVE_MEMORY", "createPoller: out of memory");
    return NULL;
  }
  p->env = env;
  p->loop = loop;
  p->epfd = epfd;
  p->buf = buf;
  p->buf_len = buf_len;
  p->meta = meta;
  p->max_entries = meta_len / ENTRY_INTS;
  napi_value name, external;
  int r = uv_poll_init(loop, &p->set_watch, epfd);
  if (r != 0 || napi_create_reference(env, argv[0], 1, &p->buffer_ref) != napi_ok || napi_create_reference(env, argv[1], 1, &p->meta_ref) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &p->callback_ref) != napi_ok ||
      napi_create_string_utf8(env, "rtmp-server:reads", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_async_init(env, NULL, name, &p->context) != napi_ok || napi_create_external(env, p, on_collected, NULL, &external) != napi_ok) {
    if (r == 0) {
      /* the handle is in the loop: closed there, then the descriptor and p go (on_handle_closed, with nothing else open) */
      p->set_watch.data = p;
      p->open_handles = 1;
      p->closed = 1;
      p->collected = 1;
      uv_close((uv_handle_t *)&p->set_watch, on_handle_closed);
    } else {
      close(epfd);
      free(p);
    }
    napi_throw_error(env, "ERR_NATIVE_POLL", r != 0 ? uv_strerror(r) : "createPoller: N-API failure");
    return NULL;
  }
  p->set_watch.data = p;
  uv_check_init(loop, &p->check);
  p->check.data = p;
  uv_timer_init(loop, &p->window);
  p->window.data = p;
  p->open_handles = 3;
  uv_check_start(&p->check, on_check);
  uv_poll_start(&p->set_watch, UV_READABLE, on_set_readable);
  /* the sockets keep the loop alive, not the poller */
  uv_unref((uv_handle_t *)&p->check);
  update_refs(p);
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
  struct epoll_event ev;
  memset(&ev, 0, sizeof ev);
  ev.events = EPOLLIN;
  ev.data.u32 = (uint32_t)token;
  if (epoll_ctl(p->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
    /* fd is the caller's again (not open, not pollable...) */
    int e = errno;
    free(w);
    napi_throw_error(env, "ERR_NATIVE_POLL", strerror(e));
    return NULL;
  }
  w->fd = fd;
  w->token = token;
  w->listening = 1;
  p->watchers[token] = w;
  p->listening++;
  update_refs(p);
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

static napi_value PollerSetWindow(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  poller *p;
  int32_t ms;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || !get_poller(env, argv[0], &p) ||
      napi_get_value_int32(env, argv[1], &ms) != napi_ok || ms < 0 || ms > WINDOW_MAX_MS) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "pollerSetWindow(poller: an open poller, ms: 0..1000)");
    return NULL;
  }
  p->window_ms = (uint64_t)ms;
  if (ms == 0 && p->window_open) {
    /* off: the open window ends now (what is ready is read in this turn's poll phase, level-triggered) */
    uv_timer_stop(&p->window);
    p->window_open = 0;
    uv_poll_start(&p->set_watch, UV_READABLE, on_set_readable);
  }
  /* a new length applies from the next window */
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
  /* p itself stays until its handles are closed and the external is collected (later calls see it closed) */
  uv_close((uv_handle_t *)&p->check, on_handle_closed);
  uv_close((uv_handle_t *)&p->window, on_handle_closed);
  uv_close((uv_handle_t *)&p->set_watch, on_handle_closed);
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
      {"pollerSetWindow", PollerSetWindow},
      {"pollerClose", PollerClose},
  };
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value fn;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].cb, NULL, &fn) != napi_ok) return 0;
    if (napi_set_named_property(env, exports, fns[i].name, fn) != napi_ok) return 0;
  }
  return 1;
}

#else /* not Linux: no poller (the server reads through the shared buffer) */

#include "reader.h"

int reader_init(napi_env env, napi_value exports) {
  (void)env;
  (void)exports;
  return 1;
}

#endif
