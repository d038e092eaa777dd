/*
 * The fan-out's system calls, made from one native call (and a C heap trim).
 *
 * A live message goes to every player as the same bytes (encoded once). Node's
 * fs.writeSync() costs about 0.75 us of user time per call around the write(2)
 * itself (the V8 API call, the binding's checks and trace events, libuv's
 * request), which at hundreds of players per message is a tenth of the server's
 * CPU. writeSlots() takes the write group's flat arrays and makes every write in
 * one loop here.
 *
 *   writeSlots(fds: Int32Array, idx: Int32Array, bufs: Buffer[], n: number,
 *              written: Int32Array): void
 *
 * For slot i < n: when fds[i] >= 0, sends bufs[idx[i]] to fds[i] with one
 * send(2) (MSG_DONTWAIT | MSG_NOSIGNAL) and stores what the kernel took in
 * written[i]: 0 for EAGAIN, -errno for an error (EPIPE, ECONNRESET, EBADF,
 * ENOTSOCK for a descriptor that is not a socket: there is no write(2)
 * fallback). A slot with fds[i] < 0 is skipped and gets -1 (the caller tells it
 * from -EPERM by its descriptor). Wrong arguments throw a TypeError; nothing is
 * written then. The caller guarantees every fds[i] >= 0 is a socket it still
 * owns at the time of the call (src/rtmp/output.ts checks each slot's socket
 * just before): this loop cannot know whether a number was closed and reused.
 *
 *   sendList(fd: number, bufs: Buffer[], n: number): number
 *
 * One non-blocking sendmsg(2) of bufs[0..n) (a gather list, MSG_DONTWAIT |
 * MSG_NOSIGNAL) to fd: what the kernel took, 0 for EAGAIN, -errno for an error,
 * as writeSlots reports them (only sockets are written). For a player given
 * several messages in one round (its writev from JavaScript, fs.writevSync,
 * costs Node's per-call work around the system call). At most IOV_MAX buffers
 * (the caller writes the rest later, as after any short write). The same
 * contract: fd must be a socket the caller owns at the time of the call.
 *
 *   trimHeap(): boolean | undefined
 *
 * glibc's malloc_trim(0): gives the C heap's free pages back to the system,
 * wherever they are (free() returns only the top of the heap). The server calls
 * it after the full collection that follows a crowd's departure, when the
 * buffers of hundreds of connections were just freed. True when memory was
 * released; undefined where the C library is not glibc.
 *
 *   dupFd(fd: number): number
 *
 * dup(2) with close-on-exec: a second descriptor for the same socket. The server
 * reads each accepted connection through a net.Socket it makes around such a
 * descriptor, with Node's `onread` (one shared read buffer for every
 * connection: no allocation per read, no stream machinery), which Node offers
 * only for sockets made that way; the accepted socket it came from is then
 * closed, and the connection lives on in the copy. Throws ERR_NATIVE_DUP with
 * errno's text on failure (EMFILE...), a TypeError for a bad argument.
 *
 *   writeFileAtomic(tmpPath, finalPath, bufs: Buffer[], done): void
 *
 * A whole file written to tmpPath and renamed to finalPath as one thread-pool
 * job (native/files.c, contract there: the caller leaves the array and the
 * buffers alone until done(err, step) is called).
 *
 * This file is part of the project (see binding.gyp and scripts/build-native.mjs);
 * without it the server makes the same writes with fs.writeSync().
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <limits.h>
#include <unistd.h>
#include "files.h"
#include "reader.h"
#ifdef __GLIBC__
#include <malloc.h>
#endif

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

/*
 * One non-blocking send(2): the bytes the kernel took, 0 for EAGAIN (its
 * buffer is full), or -errno for any other failure (EPIPE, ECONNRESET, EBADF,
 * ENOTSOCK...). Only sockets are written: a descriptor that is not one gets
 * -ENOTSOCK and nothing, never write(2), so a number that no longer names the
 * player's socket cannot take media.
 */
static int32_t send_some(int fd, const char *data, size_t len) {
  ssize_t r;
  do r = send(fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  while (r < 0 && errno == EINTR);
  if (r < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
    return errno > 0 ? -errno : -EIO;
  }
  return r > INT32_MAX ? INT32_MAX : (int32_t)r;
}

static int int32_array(napi_env env, napi_value v, int32_t **out, size_t *length) {
  napi_typedarray_type type;
  void *data;
  napi_value buffer;
  size_t offset;
  if (napi_get_typedarray_info(env, v, &type, length, &data, &buffer, &offset) != napi_ok) return 0;
  if (type != napi_int32_array) return 0;
  *out = data;
  return 1;
}

#define SMALL 64

static napi_value WriteSlots(napi_env env, napi_callback_info info) {
  size_t argc = 5;
  napi_value argv[5];
  int32_t *fds, *idx, *written;
  size_t nfds, nidx, nwritten;
  uint32_t nbufs;
  int32_t n;
  bool is_array;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 5 ||
      !int32_array(env, argv[0], &fds, &nfds) || !int32_array(env, argv[1], &idx, &nidx) ||
      !int32_array(env, argv[4], &written, &nwritten) ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nbufs) != napi_ok ||
      napi_get_value_int32(env, argv[3], &n) != napi_ok || n < 0 ||
      (size_t)n > nfds || (size_t)n > nidx || (size_t)n > nwritten) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeSlots(fds: Int32Array, idx: Int32Array, bufs: Buffer[], n, written: Int32Array)");
    return NULL;
  }
  /* the distinct buffers' bytes, looked up once (most slots share one buffer) */
  const char *small_data[SMALL];
  size_t small_len[SMALL];
  const char **data = small_data;
  size_t *len = small_len;
  if (nbufs > SMALL) {
    data = malloc(nbufs * sizeof *data);
    len = malloc(nbufs * sizeof *len);
    if (data == NULL || len == NULL) {
      free(data);
      free(len);
      napi_throw_error(env, "ERR_NATIVE_MEMORY", "writeSlots: out of memory");
      return NULL;
    }
  }
  int ok = 1;
  for (uint32_t b = 0; b < nbufs && ok; b++) {
    napi_value v;
    void *d;
    size_t l;
    bool is_buffer;
    ok = napi_get_element(env, argv[2], b, &v) == napi_ok && napi_is_buffer(env, v, &is_buffer) == napi_ok &&
         is_buffer && napi_get_buffer_info(env, v, &d, &l) == napi_ok;
    if (ok) {
      data[b] = d;
      len[b] = l;
    }
  }
  for (int32_t i = 0; i < n && ok; i++) ok = fds[i] < 0 || (idx[i] >= 0 && (uint32_t)idx[i] < nbufs);
  if (ok) {
    for (int32_t i = 0; i < n; i++) {
      int fd = fds[i];
      written[i] = fd < 0 ? -1 : send_some(fd, data[idx[i]], len[idx[i]]);
    }
  }
  if (data != small_data) {
    free(data);
    free(len);
  }
  if (!ok) napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeSlots: bufs must hold Buffers and idx must index them");
  return NULL;
}

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#define SMALL_IOV 16

static napi_value SendList(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd, n;
  uint32_t nbufs;
  bool is_array;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[1], &nbufs) != napi_ok ||
      napi_get_value_int32(env, argv[2], &n) != napi_ok || n < 1 || (uint32_t)n > nbufs) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "sendList(fd: a descriptor, bufs: Buffer[], n: 1..bufs.length)");
    return NULL;
  }
  if (n > IOV_MAX) n = IOV_MAX;
  struct iovec small[SMALL_IOV];
  struct iovec *iov = small;
  if (n > SMALL_IOV) {
    iov = malloc((size_t)n * sizeof *iov);
    if (iov == NULL) {
      napi_throw_error(env, "ERR_NATIVE_MEMORY", "sendList: out of memory");
      return NULL;
    }
  }
  int ok = 1;
  for (int32_t i = 0; i < n && ok; i++) {
    napi_value v;
    void *d;
    size_t l;
    bool is_buffer;
    ok = napi_get_element(env, argv[1], (uint32_t)i, &v) == napi_ok && napi_is_buffer(env, v, &is_buffer) == napi_ok &&
         is_buffer && napi_get_buffer_info(env, v, &d, &l) == napi_ok;
    if (ok) {
      iov[i].iov_base = d;
      iov[i].iov_len = l;
    }
  }
  int32_t result = 0;
  if (ok) {
    struct msghdr msg;
    memset(&msg, 0, sizeof msg);
    msg.msg_iov = iov;
    msg.msg_iovlen = (size_t)n;
    ssize_t r;
    do r = sendmsg(fd, &msg, MSG_DONTWAIT | MSG_NOSIGNAL);
    while (r < 0 && errno == EINTR);
    if (r < 0) result = (errno == EAGAIN || errno == EWOULDBLOCK) ? 0 : errno > 0 ? -errno : -EIO;
    else result = r > INT32_MAX ? INT32_MAX : (int32_t)r;
  }
  if (iov != small) free(iov);
  if (!ok) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "sendList: bufs must hold Buffers");
    return NULL;
  }
  napi_value out;
  if (napi_create_int32(env, result, &out) != napi_ok) return NULL;
  return out;
}

static napi_value TrimHeap(napi_env env, napi_callback_info info) {
  (void)info;
#ifdef __GLIBC__
  napi_value result;
  if (napi_get_boolean(env, malloc_trim(0) != 0, &result) != napi_ok) return NULL;
  return result;
#else
  (void)env;
  return NULL;
#endif
}

static napi_value DupFd(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "dupFd(fd: a non-negative integer)");
    return NULL;
  }
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  if (copy < 0) {
    napi_throw_error(env, "ERR_NATIVE_DUP", strerror(errno));
    return NULL;
  }
  napi_value result;
  if (napi_create_int32(env, copy, &result) != napi_ok) {
    close(copy);
    return NULL;
  }
  return result;
}

NAPI_MODULE_INIT() {
  napi_value fn;
  if (napi_create_function(env, "writeSlots", NAPI_AUTO_LENGTH, WriteSlots, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "writeSlots", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "sendList", NAPI_AUTO_LENGTH, SendList, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "sendList", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "trimHeap", NAPI_AUTO_LENGTH, TrimHeap, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "trimHeap", fn) != napi_ok) return NULL;
  if (napi_create_function(env, "dupFd", NAPI_AUTO_LENGTH, DupFd, NULL, &fn) != napi_ok) return NULL;
  if (napi_set_named_property(env, exports, "dupFd", fn) != napi_ok) return NULL;
  if (!reader_init(env, exports)) return NULL;
  if (!files_init(env, exports)) return NULL;
  return exports;
}
