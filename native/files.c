/*
 * A whole file written and renamed into place as ONE job of libuv's thread
 * pool (src/core/files.ts, writeFileAtomic).
 *
 * node:fs/promises makes four thread-pool round trips for it (open, writev,
 * close, rename), each a wake-up of a worker thread and a FileHandle or promise
 * settled on the main thread; HLS and DASH write every fragment and playlist
 * that way. Here the four system calls run back to back on one worker and the
 * main thread hears once.
 *
 *   writeFileAtomic(tmpPath: string, finalPath: string, bufs: Buffer[],
 *                   done: (err: number, step: number) => void): void
 *
 * On a thread-pool thread: open(tmpPath, O_WRONLY | O_CREAT | O_TRUNC |
 * O_CLOEXEC, 0644), writev(2) of every buffer in order (at most IOV_MAX per
 * call, again after a short write or EINTR), close(2), rename(tmpPath,
 * finalPath). On the main thread afterwards: done(0, 0), or done(-errno, step)
 * with the step that failed (STEP_OPEN 1, STEP_WRITE 2, STEP_CLOSE 3,
 * STEP_RENAME 4); tmpPath was then unlinked (its own error ignored). Wrong
 * arguments throw a TypeError (ERR_NATIVE_ARGS) and nothing is queued; a path
 * holding a NUL byte is a wrong argument.
 *
 * Contract with the caller: the buffers are written from another thread while
 * JavaScript runs. Until done is called the caller neither changes the array
 * (the job holds a reference to it, which keeps the buffers alive; their bytes
 * do not move: a Buffer's memory is outside V8's moving heap) nor writes into
 * the buffers. The paths are copied here; the callback is held by a reference.
 * The worker thread calls no N-API function.
 *
 *   writeAt(fds: Int32Array, positions: Float64Array, counts: Int32Array,
 *           bufs: Buffer[], results: Int32Array, done: () => void): void
 *
 * Positioned writes to several open files as ONE thread-pool job (the
 * recorders' writes of one turn, src/record/disk.ts). Entry i writes the next
 * counts[i] buffers of bufs, in order, to fds[i] starting at positions[i], with
 * pwritev(2) (at most IOV_MAX buffers per call, again after a short write or
 * EINTR). Then, on the main thread, results[i] is 0 (every byte written) or
 * -errno (ENOSPC, EIO, EBADF...: that entry stopped there; the others went
 * on), and done() is called. n = fds.length; positions, counts and results
 * have at least n elements and the counts add up to bufs.length (else a
 * TypeError, and nothing is queued).
 *
 * Contract with the caller, as writeFileAtomic's for the buffers and the
 * arrays (held by references until done; not changed meanwhile), and: every
 * fds[i] stays open until done is called (a descriptor closed meanwhile could
 * be given to another file, which the job would then write). The caller keeps
 * the files' handles from closing until then (src/record/disk.ts, closeFile).
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h> /* rename */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#include "files.h"

#ifndef IOV_MAX
#define IOV_MAX 1024
#endif
#ifndef O_CLOEXEC
#define O_CLOEXEC 0
#endif

/* which system call failed (the `step` given to done; 0 when none did) */
enum { STEP_NONE = 0, STEP_OPEN = 1, STEP_WRITE = 2, STEP_CLOSE = 3, STEP_RENAME = 4 };

typedef struct {
  napi_async_work work;
  napi_ref bufs;     /* the Buffer array: keeps the buffers alive until done */
  napi_ref done;     /* the callback */
  char *tmp;         /* copied paths (UTF-8, NUL-terminated) */
  char *final;
  struct iovec *iov; /* the buffers' bytes, advanced in place by short writes */
  size_t niov;
  int err;           /* -errno, 0 when the file is in place */
  int step;
} atomic_job;

static void job_free(atomic_job *job) {
  free(job->tmp);
  free(job->final);
  free(job->iov);
  free(job);
}

/*
 * Every byte of iov[0..n): writev(2) at the file's position when pos < 0, else
 * pwritev(2) from pos; at most IOV_MAX entries per call, again after a short
 * write or EINTR. 0, or errno (EIO for a write that takes nothing).
 */
static int write_all(int fd, off_t pos, struct iovec *iov, size_t n) {
  size_t i = 0;
  while (i < n) {
    if (iov[i].iov_len == 0) {
      i++;
      continue;
    }
    size_t count = n - i > IOV_MAX ? IOV_MAX : n - i;
    ssize_t r = pos < 0 ? writev(fd, iov + i, (int)count) : pwritev(fd, iov + i, (int)count, pos);
    if (r < 0) {
      if (errno == EINTR) continue;
      return errno > 0 ? errno : EIO;
    }
    if (r == 0) return EIO;
    if (pos >= 0) pos += r;
    size_t left = (size_t)r;
    while (left > 0 && i < n) {
      if (left >= iov[i].iov_len) {
        left -= iov[i].iov_len;
        iov[i].iov_len = 0;
        i++;
      } else {
        iov[i].iov_base = (char *)iov[i].iov_base + left;
        iov[i].iov_len -= left;
        left = 0;
      }
    }
  }
  return 0;
}

/* on a thread-pool thread: no N-API here */
static void job_execute(napi_env env, void *data) {
  (void)env;
  atomic_job *job = data;
  int fd;
  do fd = open(job->tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) {
    job->err = errno > 0 ? -errno : -EIO;
    job->step = STEP_OPEN;
  } else {
    int e = write_all(fd, -1, job->iov, job->niov);
    if (e != 0) {
      job->err = -e;
      job->step = STEP_WRITE;
      close(fd);
    } else if (close(fd) != 0 && errno != EINTR && errno != EINPROGRESS) {
      /* EINTR/EINPROGRESS: the descriptor is closed all the same (Linux), as libuv treats them */
      job->err = errno > 0 ? -errno : -EIO;
      job->step = STEP_CLOSE;
    } else if (rename(job->tmp, job->final) != 0) {
      job->err = errno > 0 ? -errno : -EIO;
      job->step = STEP_RENAME;
    }
  }
  if (job->err != 0) unlink(job->tmp);
}

/* on the main thread */
static void job_complete(napi_env env, napi_status status, void *data) {
  atomic_job *job = data;
  if (status != napi_ok && job->err == 0) {
    job->err = -ECANCELED;
    job->step = STEP_NONE;
  }
  napi_value done, global, argv[2];
  if (napi_get_reference_value(env, job->done, &done) == napi_ok && done != NULL &&
      napi_get_global(env, &global) == napi_ok && napi_create_int32(env, job->err, &argv[0]) == napi_ok &&
      napi_create_int32(env, job->step, &argv[1]) == napi_ok) {
    /* an exception thrown by done is the process's uncaught exception (N-API reports it) */
    napi_call_function(env, global, done, 2, argv, NULL);
  }
  napi_delete_reference(env, job->done);
  napi_delete_reference(env, job->bufs);
  napi_delete_async_work(env, job->work);
  job_free(job);
}

/* iov[i] = the bytes of the array's Buffer i, for i < n: 1, or 0 when an element is not a Buffer */
static int buffers_to_iov(napi_env env, napi_value array, uint32_t n, struct iovec *iov) {
  for (uint32_t i = 0; i < n; i++) {
    napi_value v;
    void *d;
    size_t l;
    bool is_buffer = false;
    if (napi_get_element(env, array, i, &v) != napi_ok || napi_is_buffer(env, v, &is_buffer) != napi_ok || !is_buffer ||
        napi_get_buffer_info(env, v, &d, &l) != napi_ok) {
      return 0;
    }
    iov[i].iov_base = d;
    iov[i].iov_len = l;
  }
  return 1;
}

/* a copy of a string argument, NULL when it is not a string, holds a NUL byte, or memory is short */
static char *copy_path(napi_env env, napi_value v) {
  size_t len;
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len == 0) return NULL;
  char *s = malloc(len + 1);
  if (s == NULL) return NULL;
  size_t got;
  if (napi_get_value_string_utf8(env, v, s, len + 1, &got) != napi_ok || got != len || strlen(s) != len) {
    free(s);
    return NULL;
  }
  return s;
}

static napi_value WriteFileAtomic(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  uint32_t nbufs = 0;
  bool is_array = false;
  napi_valuetype done_type = napi_undefined;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 4 ||
      napi_is_array(env, argv[2], &is_array) != napi_ok || !is_array ||
      napi_get_array_length(env, argv[2], &nbufs) != napi_ok ||
      napi_typeof(env, argv[3], &done_type) != napi_ok || done_type != napi_function) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeFileAtomic(tmpPath: string, finalPath: string, bufs: Buffer[], done: (err, step) => void)");
    return NULL;
  }
  atomic_job *job = calloc(1, sizeof *job);
  if (job == NULL) {
    napi_throw_error(env, "ERR_NATIVE_MEMORY", "writeFileAtomic: out of memory");
    return NULL;
  }
  job->tmp = copy_path(env, argv[0]);
  job->final = copy_path(env, argv[1]);
  if (job->tmp == NULL || job->final == NULL) {
    job_free(job);
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeFileAtomic: the paths must be non-empty strings without NUL bytes");
    return NULL;
  }
  job->niov = nbufs;
  if (nbufs > 0) {
    job->iov = malloc((size_t)nbufs * sizeof *job->iov);
    if (job->iov == NULL) {
      job_free(job);
      napi_throw_error(env, "ERR_NATIVE_MEMORY", "writeFileAtomic: out of memory");
      return NULL;
    }
  }
  if (!buffers_to_iov(env, argv[2], nbufs, job->iov)) {
    job_free(job);
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeFileAtomic: bufs must hold Buffers");
    return NULL;
  }
  napi_value name;
  if (napi_create_string_utf8(env, "rtmp-server:writeFileAtomic", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_reference(env, argv[2], 1, &job->bufs) != napi_ok) {
    job_free(job);
    return NULL;
  }
  if (napi_create_reference(env, argv[3], 1, &job->done) != napi_ok) {
    napi_delete_reference(env, job->bufs);
    job_free(job);
    return NULL;
  }
  if (napi_create_async_work(env, NULL, name, job_execute, job_complete, job, &job->work) != napi_ok) {
    napi_delete_reference(env, job->bufs);
    napi_delete_reference(env, job->done);
    job_free(job);
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    napi_delete_reference(env, job->bufs);
    napi_delete_reference(env, job->done);
    job_free(job);
    return NULL;
  }
  return NULL;
}

typedef struct {
  napi_async_work work;
  napi_ref refs[5]; /* fds, positions, counts, bufs, results: kept alive until done */
  napi_ref done;
  size_t n;
  int32_t *fds;
  double *positions;
  int32_t *counts;
  int32_t *results;  /* written by the worker, read by JavaScript after done */
  struct iovec *iov; /* every buffer's bytes, advanced in place by short writes */
  size_t niov;
} at_job;

static void at_job_free(napi_env env, at_job *job) {
  for (size_t i = 0; i < sizeof job->refs / sizeof job->refs[0]; i++) {
    if (job->refs[i] != NULL) napi_delete_reference(env, job->refs[i]);
  }
  if (job->done != NULL) napi_delete_reference(env, job->done);
  free(job->iov);
  free(job);
}

/* on a thread-pool thread: no N-API here */
static void at_execute(napi_env env, void *data) {
  (void)env;
  at_job *job = data;
  size_t k = 0;
  for (size_t i = 0; i < job->n; i++) {
    size_t c = (size_t)job->counts[i];
    int e = write_all(job->fds[i], (off_t)job->positions[i], job->iov + k, c);
    job->results[i] = e == 0 ? 0 : -e;
    k += c;
  }
}

/* on the main thread */
static void at_complete(napi_env env, napi_status status, void *data) {
  at_job *job = data;
  if (status != napi_ok) {
    for (size_t i = 0; i < job->n; i++) job->results[i] = -ECANCELED;
  }
  napi_value done, global;
  if (napi_get_reference_value(env, job->done, &done) == napi_ok && done != NULL && napi_get_global(env, &global) == napi_ok) {
    /* an exception thrown by done is the process's uncaught exception (N-API reports it) */
    napi_call_function(env, global, done, 0, NULL, NULL);
  }
  napi_delete_async_work(env, job->work);
  at_job_free(env, job);
}

/* the data and element count of a typed array of `type`, or 0 */
static int typed(napi_env env, napi_value v, napi_typedarray_type want, void **data, size_t *len) {
  napi_typedarray_type type;
  napi_value ab;
  size_t off;
  bool is = false;
  return napi_is_typedarray(env, v, &is) == napi_ok && is && napi_get_typedarray_info(env, v, &type, len, data, &ab, &off) == napi_ok && type == want;
}

static napi_value WriteAt(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  void *fds, *positions, *counts, *results;
  size_t nfds = 0, npos = 0, ncounts = 0, nresults = 0;
  uint32_t nbufs = 0;
  bool is_array = false;
  napi_valuetype done_type = napi_undefined;
  static const char usage[] = "writeAt(fds: Int32Array, positions: Float64Array, counts: Int32Array, bufs: Buffer[], results: Int32Array, done: () => void)";
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 6 || !typed(env, argv[0], napi_int32_array, &fds, &nfds) ||
      !typed(env, argv[1], napi_float64_array, &positions, &npos) || !typed(env, argv[2], napi_int32_array, &counts, &ncounts) ||
      napi_is_array(env, argv[3], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[3], &nbufs) != napi_ok ||
      !typed(env, argv[4], napi_int32_array, &results, &nresults) || napi_typeof(env, argv[5], &done_type) != napi_ok ||
      done_type != napi_function || npos < nfds || ncounts < nfds || nresults < nfds) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", usage);
    return NULL;
  }
  uint64_t total = 0;
  for (size_t i = 0; i < nfds; i++) {
    int32_t c = ((int32_t *)counts)[i];
    double pos = ((double *)positions)[i];
    if (c < 0 || ((int32_t *)fds)[i] < 0 || !(pos >= 0) || pos > 9007199254740991.0 || pos != (double)(int64_t)pos) {
      napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeAt: each entry needs a descriptor >= 0, a whole position >= 0 and a count >= 0");
      return NULL;
    }
    total += (uint64_t)c;
  }
  if (total != nbufs) {
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeAt: the counts must add up to bufs.length");
    return NULL;
  }
  at_job *job = calloc(1, sizeof *job);
  if (job == NULL || (nbufs > 0 && (job->iov = malloc((size_t)nbufs * sizeof *job->iov)) == NULL)) {
    free(job);
    napi_throw_error(env, "ERR_NATIVE_MEMORY", "writeAt: out of memory");
    return NULL;
  }
  job->n = nfds;
  job->niov = nbufs;
  job->fds = fds;
  job->positions = positions;
  job->counts = counts;
  job->results = results;
  if (!buffers_to_iov(env, argv[3], nbufs, job->iov)) {
    at_job_free(env, job);
    napi_throw_type_error(env, "ERR_NATIVE_ARGS", "writeAt: bufs must hold Buffers");
    return NULL;
  }
  /* the typed arrays and the buffer array (argv[0..4]) live until done */
  for (size_t r = 0; r < 5; r++) {
    if (napi_create_reference(env, argv[r], 1, &job->refs[r]) != napi_ok) {
      at_job_free(env, job);
      return NULL;
    }
  }
  napi_value name;
  if (napi_create_reference(env, argv[5], 1, &job->done) != napi_ok ||
      napi_create_string_utf8(env, "rtmp-server:writeAt", NAPI_AUTO_LENGTH, &name) != napi_ok ||
      napi_create_async_work(env, NULL, name, at_execute, at_complete, job, &job->work) != napi_ok) {
    at_job_free(env, job);
    return NULL;
  }
  if (napi_queue_async_work(env, job->work) != napi_ok) {
    napi_delete_async_work(env, job->work);
    at_job_free(env, job);
    return NULL;
  }
  return NULL;
}

int files_init(napi_env env, napi_value exports) {
  napi_value fn;
  if (napi_create_function(env, "writeFileAtomic", NAPI_AUTO_LENGTH, WriteFileAtomic, NULL, &fn) != napi_ok) return 0;
  if (napi_set_named_property(env, exports, "writeFileAtomic", fn) != napi_ok) return 0;
  if (napi_create_function(env, "writeAt", NAPI_AUTO_LENGTH, WriteAt, NULL, &fn) != napi_ok) return 0;
  return napi_set_named_property(env, exports, "writeAt", fn) == napi_ok;
}
