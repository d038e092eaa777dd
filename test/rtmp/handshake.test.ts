import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { spawn } from 'node:child_process';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import fc from 'fast-check';
import { ClientHandshake, HANDSHAKE_SIZE, ServerHandshake, type HandshakeStep } from '../../src/rtmp/handshake.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';

// ---------------------------------------------------------------------------
// An independent reference of the digest handshake, written separately from
// the implementation, so the tests can catch a wrong key, offset or layout.

const TAIL = Buffer.from([
  0xf0, 0xee, 0xc2, 0x4a, 0x80, 0x68, 0xbe, 0xe8, 0x2e, 0x00, 0xd0, 0xd1, 0x02, 0x9e, 0x7e, 0x57, 0x6e, 0xec, 0x5d,
  0x2d, 0x29, 0x80, 0x6f, 0xab, 0x93, 0xb8, 0xe6, 0x36, 0xcf, 0xeb, 0x31, 0xae,
]);
const FP_KEY = Buffer.from('Genuine Adobe Flash Player 001');
const FMS_KEY = Buffer.from('Genuine Adobe Flash Media Server 001');
const FP_FULL = Buffer.concat([FP_KEY, TAIL]);
const FMS_FULL = Buffer.concat([FMS_KEY, TAIL]);
const SCHEME_BASES = [8, 772] as const;
const C0C1 = 1 + HANDSHAKE_SIZE;
const FULL = 1 + 2 * HANDSHAKE_SIZE;

function sha(key: Buffer, data: Buffer): Buffer {
  return createHmac('sha256', key).update(data).digest();
}

function refPos(p: Buffer, scheme: 0 | 1): number {
  const b = SCHEME_BASES[scheme];
  return ((p[b]! + p[b + 1]! + p[b + 2]! + p[b + 3]!) % 728) + b + 4;
}

/** The digest in that scheme if valid, else undefined. */
function refDigest(p: Buffer, scheme: 0 | 1, key: Buffer): Buffer | undefined {
  assert.equal(p.length, HANDSHAKE_SIZE);
  const pos = refPos(p, scheme);
  const without = Buffer.concat([p.subarray(0, pos), p.subarray(pos + 32)]);
  const d = p.subarray(pos, pos + 32);
  return sha(key, without).equals(d) ? Buffer.from(d) : undefined;
}

function refSigned(p: Buffer, peerDigest: Buffer, fullKey: Buffer): boolean {
  return sha(sha(fullKey, peerDigest), p.subarray(0, 1504)).equals(p.subarray(1504, 1536));
}

/** A digest C1 built by the reference (not by ClientHandshake). */
function refDigestC1(scheme: 0 | 1, seed: number): Buffer {
  const c1 = rng(seed)(HANDSHAKE_SIZE);
  c1.writeUInt32BE(1234, 0);
  c1.writeUInt32BE(0x80000702, 4);
  const pos = refPos(c1, scheme);
  const d = sha(FP_KEY, Buffer.concat([c1.subarray(0, pos), c1.subarray(pos + 32)]));
  d.copy(c1, pos);
  return c1;
}

// ---------------------------------------------------------------------------
// helpers

/** A deterministic byte source (xorshift32), one state per call. */
function rng(seed: number): (n: number) => Buffer {
  let s = seed >>> 0 || 1;
  return (n: number) => {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      b[i] = s & 0xff;
    }
    return b;
  };
}

function withC0(c1: Buffer, version = 3): Buffer {
  return Buffer.concat([Buffer.from([version]), c1]);
}

/** Feeds `data` in pieces whose sizes cycle through `sizes`; collects everything. */
function feed(
  push: (b: Buffer) => HandshakeStep,
  data: Buffer,
  sizes: readonly number[] = [data.length || 1],
): { sent: Buffer; done: boolean; rest: Buffer; doneAtStep: number } {
  const sent: Buffer[] = [];
  const rest: Buffer[] = [];
  let done = false;
  let doneAtStep = -1;
  let off = 0;
  let i = 0;
  while (off < data.length) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    const step = push(data.subarray(off, off + n));
    sent.push(...step.send);
    if (done) assert.equal(step.send.length, 0, 'nothing sent after done');
    if (step.done && !done) {
      done = true;
      doneAtStep = i;
    }
    if (!step.done) assert.equal(step.rest.length, 0, 'no rest before done');
    rest.push(step.rest);
    off += n;
    i++;
  }
  return { sent: Buffer.concat(sent), done, rest: Buffer.concat(rest), doneAtStep };
}

interface Exchange {
  c0c1: Buffer;
  s0s1s2: Buffer;
  c2: Buffer;
  serverRest: Buffer;
  clientRest: Buffer;
}

/** Runs client against server; `sizes` splits every delivery; `extra*` follow the handshake. */
function exchange(
  client: ClientHandshake,
  server: ServerHandshake,
  sizes?: readonly number[],
  extraToServer = Buffer.alloc(0),
  extraToClient = Buffer.alloc(0),
): Exchange {
  const c0c1 = client.start();
  assert.equal(c0c1.length, C0C1);
  const a = feed((b) => server.push(b), c0c1, sizes);
  assert.equal(a.done, false);
  assert.equal(a.sent.length, FULL, 'server answers S0+S1+S2 as soon as C0+C1 are in');
  const b = feed((x) => client.push(x), Buffer.concat([a.sent, extraToClient]), sizes);
  assert.equal(b.done, true);
  assert.equal(b.sent.length, HANDSHAKE_SIZE);
  const c = feed((x) => server.push(x), Buffer.concat([b.sent, extraToServer]), sizes);
  assert.equal(c.done, true);
  assert.equal(c.sent.length, 0);
  return { c0c1, s0s1s2: a.sent, c2: b.sent, serverRest: c.rest, clientRest: b.rest };
}

function isVersionError(e: unknown): boolean {
  return isServerError(e, ErrorCode.HandshakeVersion);
}

// ---------------------------------------------------------------------------
// plain

void test('plain: client and server complete; S2 echoes C1 and C2 echoes S1', () => {
  const client = new ClientHandshake({ digest: false, random: rng(1), now: () => 77 });
  const server = new ServerHandshake({ random: rng(2), now: () => 99 });
  const x = exchange(client, server);
  assert.equal(x.c0c1[0], 3);
  const c1 = x.c0c1.subarray(1);
  assert.equal(c1.readUInt32BE(0), 77);
  assert.equal(c1.readUInt32BE(4), 0, 'plain C1 has a zero field');
  assert.equal(x.s0s1s2[0], 3);
  const s1 = x.s0s1s2.subarray(1, C0C1);
  const s2 = x.s0s1s2.subarray(C0C1);
  assert.equal(s1.readUInt32BE(0), 99);
  assert.equal(s1.readUInt32BE(4), 0, 'plain S1 has a zero field');
  assert.deepEqual(s2, c1);
  assert.deepEqual(x.c2, s1);
  assert.equal(server.digest, false);
  assert.equal(client.serverDigestValid, undefined);
  assert.equal(x.serverRest.length, 0);
  assert.equal(x.clientRest.length, 0);
});

void test('plain: any C1 content with a zero version field is echoed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: HANDSHAKE_SIZE, maxLength: HANDSHAKE_SIZE }), (bytes) => {
      const c1 = Buffer.from(bytes);
      c1.writeUInt32BE(0, 4);
      const server = new ServerHandshake();
      const step = server.push(withC0(c1));
      assert.equal(step.done, false);
      assert.equal(step.send.length, 1);
      const out = Buffer.concat(step.send);
      assert.equal(out.length, FULL);
      assert.deepEqual(out.subarray(C0C1), c1);
      assert.equal(server.digest, false);
    }),
    { numRuns: 50 },
  );
});

void test('random C1 with a non-zero version but no valid digest falls back to plain', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: HANDSHAKE_SIZE, maxLength: HANDSHAKE_SIZE }), (bytes) => {
      const c1 = Buffer.from(bytes);
      c1[4] = c1[4]! | 1;
      const server = new ServerHandshake();
      const out = Buffer.concat(server.push(withC0(c1)).send);
      assert.equal(server.digest, false);
      assert.equal(out.readUInt32BE(1 + 4), 0);
      assert.deepEqual(out.subarray(C0C1), c1);
      const end = server.push(Buffer.from(bytes));
      assert.equal(end.done, true);
    }),
    { numRuns: 50 },
  );
});

// ---------------------------------------------------------------------------
// digest

for (const scheme of [0, 1] as const) {
  void test(`digest scheme ${scheme}: client and server validate each other`, () => {
    const client = new ClientHandshake({ scheme, random: rng(10 + scheme) });
    const server = new ServerHandshake({ random: rng(20 + scheme) });
    const x = exchange(client, server);
    const c1 = x.c0c1.subarray(1);
    assert.notEqual(c1.readUInt32BE(4), 0, 'digest C1 carries a version');
    const clientDigest = refDigest(c1, scheme, FP_KEY);
    assert.ok(clientDigest, `client C1 digest is valid in scheme ${scheme}`);

    const s1 = x.s0s1s2.subarray(1, C0C1);
    const s2 = x.s0s1s2.subarray(C0C1);
    assert.equal(s1.readUInt32BE(4), 0x0d0e0a0d, 'FMS-like server version');
    const serverDigest = refDigest(s1, scheme, FMS_KEY);
    assert.ok(serverDigest, `server S1 digest is valid in the same scheme ${scheme}`);
    assert.ok(refSigned(s2, clientDigest, FMS_FULL), 'S2 is signed over the client digest');
    assert.notDeepEqual(s2, c1, 'S2 is not an echo in digest mode');
    assert.ok(refSigned(x.c2, serverDigest, FP_FULL), 'C2 is signed over the server digest');

    assert.equal(server.digest, true);
    assert.equal(client.serverDigestValid, true);
  });

  void test(`digest scheme ${scheme}: server accepts a reference-built C1`, () => {
    const c1 = refDigestC1(scheme, 40 + scheme);
    const server = new ServerHandshake({ random: rng(3) });
    const out = Buffer.concat(server.push(withC0(c1)).send);
    assert.equal(server.digest, true);
    const s1 = out.subarray(1, C0C1);
    const serverDigest = refDigest(s1, scheme, FMS_KEY);
    assert.ok(serverDigest);
    assert.equal(refDigest(s1, scheme === 0 ? 1 : 0, FMS_KEY), undefined, 'not valid in the other scheme');
    assert.ok(refSigned(out.subarray(C0C1), refDigest(c1, scheme, FP_KEY)!, FMS_FULL));
  });
}

void test('digest positions match the reference for any offset bytes (incl. sums >= 728)', () => {
  const check = (body: Buffer, scheme: 0 | 1): void => {
    const fixed = (n: number): Buffer => body.subarray(0, n);
    const c1 = new ClientHandshake({ scheme, random: fixed }).start().subarray(1);
    const clientDigest = refDigest(c1, scheme, FP_KEY);
    assert.ok(clientDigest, 'client digest where the reference expects it');
    const server = new ServerHandshake({ random: fixed });
    const out = Buffer.concat(server.push(withC0(c1)).send);
    assert.equal(server.digest, true);
    assert.ok(refDigest(out.subarray(1, C0C1), scheme, FMS_KEY), 'server digest where the reference expects it');
  };
  for (const scheme of [0, 1] as const) {
    check(Buffer.alloc(HANDSHAKE_SIZE, 0xff), scheme); // offset sum 1020
    check(Buffer.alloc(HANDSHAKE_SIZE, 0xb6), scheme); // offset sum 728: wraps to 0
    check(Buffer.alloc(HANDSHAKE_SIZE, 0), scheme);
  }
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: HANDSHAKE_SIZE, maxLength: HANDSHAKE_SIZE }),
      fc.constantFrom(0 as const, 1 as const),
      (bytes, scheme) => check(Buffer.from(bytes), scheme),
    ),
    { numRuns: 100 },
  );
});

void test('digest C1 with a corrupted digest (or corrupted body) falls back to plain', () => {
  for (const scheme of [0, 1] as const) {
    const good = refDigestC1(scheme, 50 + scheme);
    const pos = refPos(good, scheme);
    // a byte inside the digest, a byte of the payload, and one outside both offset blocks
    for (const at of [pos, pos + 31, 0, 1535]) {
      const c1 = Buffer.from(good);
      c1[at] = c1[at]! ^ 0x40;
      assert.equal(refDigest(c1, 0, FP_KEY) ?? refDigest(c1, 1, FP_KEY), undefined);
      const server = new ServerHandshake();
      const out = Buffer.concat(server.push(withC0(c1)).send);
      assert.equal(server.digest, false, `scheme ${scheme}, byte ${at}`);
      assert.equal(out.readUInt32BE(1 + 4), 0);
      assert.deepEqual(out.subarray(C0C1), c1);
    }
  }
});

void test('digest client against a plain server: completes, echoes S1, reports invalid', () => {
  const client = new ClientHandshake({ random: rng(5) });
  const c0c1 = client.start();
  // a plain server answer: S1 with a zero version field, S2 = C1
  const s1 = rng(6)(HANDSHAKE_SIZE);
  s1.writeUInt32BE(0, 4);
  const step = client.push(Buffer.concat([Buffer.from([3]), s1, c0c1.subarray(1)]));
  assert.equal(step.done, true);
  assert.deepEqual(Buffer.concat(step.send), s1);
  assert.equal(client.serverDigestValid, false);
});

void test('digest client against a server with a version but a bad S1 digest', () => {
  const client = new ClientHandshake({ random: rng(7) });
  client.start();
  const s1 = rng(8)(HANDSHAKE_SIZE);
  s1.writeUInt32BE(0x0d0e0a0d, 4);
  const step = client.push(Buffer.concat([Buffer.from([3]), s1, rng(9)(HANDSHAKE_SIZE)]));
  assert.equal(step.done, true);
  assert.deepEqual(Buffer.concat(step.send), s1, 'falls back to echoing S1');
  assert.equal(client.serverDigestValid, false);
});

void test('digest client: valid S1 digest but a bad S2 signature is reported invalid', () => {
  const client = new ClientHandshake({ random: rng(11) });
  const server = new ServerHandshake({ random: rng(12) });
  const out = Buffer.concat(server.push(client.start()).send);
  out[out.length - 1] = out[out.length - 1]! ^ 1;
  const first = client.push(out.subarray(0, C0C1));
  assert.equal(first.send.length, 1, 'C2 is sent as soon as S1 is in');
  assert.equal(first.done, false);
  assert.equal(client.serverDigestValid, true);
  const second = client.push(out.subarray(C0C1));
  assert.equal(second.done, true);
  assert.equal(client.serverDigestValid, false);
});

// ---------------------------------------------------------------------------
// delivery

void test('byte-at-a-time delivery, plain and both digest schemes', () => {
  const cases = [
    { digest: false, scheme: 0 as const },
    { digest: true, scheme: 0 as const },
    { digest: true, scheme: 1 as const },
  ];
  for (const { digest, scheme } of cases) {
    const client = new ClientHandshake({ digest, scheme, random: rng(60) });
    const server = new ServerHandshake({ random: rng(61) });
    const x = exchange(client, server, [1]);
    assert.equal(server.digest, digest);
    assert.equal(client.serverDigestValid, digest ? true : undefined);
    if (!digest) assert.deepEqual(x.s0s1s2.subarray(C0C1), x.c0c1.subarray(1));
  }
});

void test('server sends S0+S1+S2 exactly when the last C1 byte arrives', () => {
  const server = new ServerHandshake();
  const c0c1 = new ClientHandshake().start();
  const r = feed((b) => server.push(b), c0c1, [1]);
  // the send happened on the last single-byte push only
  const early = new ServerHandshake().push(c0c1.subarray(0, C0C1 - 1));
  assert.equal(early.send.length, 0);
  assert.equal(r.sent.length, FULL);
});

void test('arbitrary split points give the same result as one piece', () => {
  fc.assert(
    fc.property(
      fc.array(fc.integer({ min: 1, max: 2000 }), { minLength: 1, maxLength: 20 }),
      fc.boolean(),
      fc.constantFrom(0 as const, 1 as const),
      (sizes, digest, scheme) => {
        const whole = exchange(
          new ClientHandshake({ digest, scheme, random: rng(70), now: () => 5 }),
          new ServerHandshake({ random: rng(71), now: () => 6 }),
        );
        const server = new ServerHandshake({ random: rng(71), now: () => 6 });
        const client = new ClientHandshake({ digest, scheme, random: rng(70), now: () => 5 });
        const split = exchange(client, server, sizes);
        assert.deepEqual(split.c0c1, whole.c0c1);
        assert.deepEqual(split.s0s1s2, whole.s0s1s2);
        assert.deepEqual(split.c2, whole.c2);
        assert.equal(server.digest, digest);
      },
    ),
    { numRuns: 40 },
  );
});

void test('bytes after the handshake come back in rest, on both sides', () => {
  fc.assert(
    fc.property(
      fc.uint8Array({ minLength: 1, maxLength: 5000 }),
      fc.array(fc.integer({ min: 1, max: 4000 }), { minLength: 1, maxLength: 5 }),
      (extraBytes, sizes) => {
        const extra = Buffer.from(extraBytes);
        const x = exchange(new ClientHandshake(), new ServerHandshake(), sizes, extra, extra);
        assert.deepEqual(x.serverRest, extra);
        assert.deepEqual(x.clientRest, extra);
      },
    ),
    { numRuns: 40 },
  );
});

void test('C0+C1+C2+chunk data in one push: one answer, done, the chunk bytes in rest', () => {
  const chunk = Buffer.from([0x03, 0, 0, 0, 0, 0, 0x20, 0x14, 0, 0, 0, 0]);
  const c1 = rng(80)(HANDSHAKE_SIZE);
  c1.writeUInt32BE(0, 4);
  const server = new ServerHandshake();
  const step = server.push(Buffer.concat([withC0(c1), rng(81)(HANDSHAKE_SIZE), chunk]));
  assert.equal(step.done, true);
  assert.equal(Buffer.concat(step.send).length, FULL);
  assert.deepEqual(step.rest, chunk);
  // later pushes are passed through untouched
  const later = server.push(Buffer.from([1, 2, 3]));
  assert.deepEqual(later, { send: [], done: true, rest: Buffer.from([1, 2, 3]) });
});

void test('truncated input: no answer and not done', () => {
  const server = new ServerHandshake();
  const c0c1 = new ClientHandshake().start();
  const a = server.push(c0c1.subarray(0, 1000));
  assert.deepEqual(a.send, []);
  assert.equal(a.done, false);
  assert.equal(a.rest.length, 0);
  const b = server.push(c0c1.subarray(1000));
  assert.equal(b.send.length, 1);
  const c = server.push(Buffer.alloc(HANDSHAKE_SIZE - 1));
  assert.equal(c.done, false, 'one byte of C2 missing');
  const d = server.push(Buffer.alloc(1));
  assert.equal(d.done, true);
  assert.equal(d.rest.length, 0);
});

void test('empty pushes are harmless', () => {
  const server = new ServerHandshake();
  assert.deepEqual(server.push(Buffer.alloc(0)), { send: [], done: false, rest: Buffer.alloc(0) });
  const client = new ClientHandshake();
  client.start();
  assert.deepEqual(client.push(Buffer.alloc(0)), { send: [], done: false, rest: Buffer.alloc(0) });
});

void test('random bytes after a version 3 byte: the server always completes after exactly 3073 bytes', () => {
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 3073, maxLength: 4000 }), (bytes) => {
      const data = Buffer.from(bytes);
      data[0] = 3;
      const server = new ServerHandshake();
      const step = server.push(data);
      assert.equal(step.done, true);
      assert.equal(Buffer.concat(step.send).length, FULL);
      assert.deepEqual(step.rest, data.subarray(1 + 2 * HANDSHAKE_SIZE));
    }),
    { numRuns: 30 },
  );
});

// ---------------------------------------------------------------------------
// versions and misuse

void test('server refuses a version byte other than 3, RTMPE with a clear message', () => {
  for (const v of [0, 1, 2, 4, 5, 31, 255]) {
    const server = new ServerHandshake();
    assert.throws(() => server.push(Buffer.from([v, 0, 0, 0])), isVersionError, `version ${v}`);
  }
  for (const v of [6, 8, 9]) {
    assert.throws(
      () => new ServerHandshake().push(Buffer.from([v])),
      (e: unknown) => isVersionError(e) && /RTMPE|encrypt/i.test((e as Error).message),
    );
  }
});

void test('server checks the version byte as soon as it arrives', () => {
  const server = new ServerHandshake();
  assert.throws(() => server.push(Buffer.from([6])), isVersionError);
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }).filter((v) => v !== 3), (v) => {
      assert.throws(() => new ServerHandshake().push(Buffer.from([v])), isVersionError);
    }),
  );
});

void test('client refuses a server version byte other than 3', () => {
  for (const v of [0, 6, 0xff]) {
    const client = new ClientHandshake();
    client.start();
    assert.throws(() => client.push(Buffer.from([v])), isVersionError);
  }
});

void test('client misuse: push before start, start twice', () => {
  assert.throws(() => new ClientHandshake().push(Buffer.from([3])), (e: unknown) => isServerError(e));
  const client = new ClientHandshake();
  client.start();
  assert.throws(() => client.start(), (e: unknown) => isServerError(e));
});

void test('client C1 layout: time, version, digest on/off', () => {
  const plain = new ClientHandshake({ digest: false, now: () => 0x1_0000_0005 }).start();
  assert.equal(plain.readUInt32BE(1), 5, 'time is taken modulo 2^32');
  assert.equal(plain.readUInt32BE(5), 0);
  const dig = new ClientHandshake({ scheme: 1 }).start();
  assert.notEqual(dig.readUInt32BE(5), 0);
  assert.ok(refDigest(dig.subarray(1), 1, FP_KEY));
});

// ---------------------------------------------------------------------------
// interop with a real client: ffmpeg

interface Capture {
  received: Buffer;
  sent: Buffer;
  digest: boolean;
  firstAfter: number;
}

async function ffmpegPath(): Promise<string> {
  return process.env.FFMPEG_PATH ?? (await import('@ffmpeg-installer/ffmpeg')).default.path;
}

/** Accepts one connection, runs ServerHandshake, resolves with the first byte after the handshake. */
async function runAgainstFfmpeg(
  t: { after: (fn: () => void | Promise<void>) => void },
  args: (url: string) => string[],
): Promise<Capture> {
  const path = await ffmpegPath();
  const sockets: Socket[] = [];
  let resolveCapture: (c: Capture) => void = () => undefined;
  let rejectCapture: (e: unknown) => void = () => undefined;
  const captured = new Promise<Capture>((res, rej) => {
    resolveCapture = res;
    rejectCapture = rej;
  });
  const server = createServer((socket) => {
    sockets.push(socket);
    const hs = new ServerHandshake();
    const received: Buffer[] = [];
    const sent: Buffer[] = [];
    let done = false;
    const finish = (b: Buffer): void => {
      if (b.length === 0) return;
      resolveCapture({
        received: Buffer.concat(received),
        sent: Buffer.concat(sent),
        digest: hs.digest,
        firstAfter: b[0]!,
      });
      socket.destroy();
    };
    socket.on('error', () => undefined);
    socket.on('data', (data: Buffer) => {
      try {
        if (done) return finish(data);
        const step = hs.push(data);
        const used = step.done ? data.subarray(0, data.length - step.rest.length) : data;
        received.push(Buffer.from(used));
        for (const b of step.send) {
          sent.push(b);
          socket.write(b);
        }
        if (step.done) {
          done = true;
          finish(step.rest);
        }
      } catch (e) {
        rejectCapture(e);
        socket.destroy();
      }
    });
  });
  await new Promise<void>((res) => server.listen(0, '127.0.0.1', res));
  const { port } = server.address() as AddressInfo;
  const proc = spawn(path, args(`rtmp://127.0.0.1:${port}/live/test`), { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  proc.stderr.setEncoding('utf8');
  proc.stderr.on('data', (s: string) => {
    stderr = (stderr + s).slice(-4000);
  });
  proc.on('error', (e) => rejectCapture(e));
  proc.on('exit', (code) => rejectCapture(new Error(`ffmpeg exited (${code}) before sending chunk data:\n${stderr}`)));
  t.after(async () => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
    for (const s of sockets) s.destroy();
    await new Promise<void>((res) => server.close(() => res()));
  });
  const timer = setTimeout(() => rejectCapture(new Error(`no chunk data from ffmpeg in time:\n${stderr}`)), 8000);
  t.after(() => clearTimeout(timer));
  return captured;
}

void test('interop: ffmpeg publisher does the digest handshake and then sends chunk data', { timeout: 10_000 }, async (t) => {
  const cap = await runAgainstFfmpeg(t, (url) => [
    '-hide_banner',
    '-loglevel',
    'error',
    '-re',
    '-f',
    'lavfi',
    '-i',
    'testsrc=size=64x64:rate=5',
    '-t',
    '2',
    '-c:v',
    'libx264',
    '-f',
    'flv',
    url,
  ]);
  assert.equal(cap.received[0], 3);
  const c1 = cap.received.subarray(1, C0C1);
  assert.notEqual(c1.readUInt32BE(4), 0, "ffmpeg's C1 announces a version (digest scheme)");
  const clientDigest = refDigest(c1, 0, FP_KEY) ?? refDigest(c1, 1, FP_KEY);
  assert.ok(clientDigest, "ffmpeg's C1 digest validates with the reference");
  assert.equal(cap.digest, true, 'the server validated the client digest');
  assert.equal(cap.received.length, FULL, 'C0+C1+C2 consumed, nothing more');
  assert.equal(cap.firstAfter & 0x3f, 3, 'first chunk is on csid 3 (connect)');
});

void test('interop: ffmpeg player accepts our S1 digest and S2 signature', { timeout: 10_000 }, async (t) => {
  // when reading, ffmpeg verifies S1's digest and S2's signature and aborts on mismatch
  const cap = await runAgainstFfmpeg(t, (url) => ['-hide_banner', '-loglevel', 'error', '-i', url, '-f', 'null', '-']);
  assert.equal(cap.digest, true);
  const s1 = cap.sent.subarray(1, C0C1);
  const serverDigest = refDigest(s1, 0, FMS_KEY) ?? refDigest(s1, 1, FMS_KEY);
  assert.ok(serverDigest);
  const c2 = cap.received.subarray(C0C1, FULL);
  assert.ok(refSigned(c2, serverDigest, FP_FULL), "ffmpeg's C2 is signed over our S1 digest");
  assert.equal(cap.firstAfter & 0x3f, 3, 'first chunk is on csid 3 (connect)');
});
