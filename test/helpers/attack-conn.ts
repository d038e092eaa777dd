/**
 * Raw-socket attack helpers (issue 13, conn area): a healthy stream that must
 * keep flowing beside the attack, raw sockets, a real client handshake, and a
 * probe of the event loop's delay.
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import type { TestContext } from 'node:test';
import { ClientHandshake } from '../../src/rtmp/handshake.js';
import { until, type TestServer } from './server.js';
import { playCounting, publishSynthetic, type CountingPlayer } from './synthetic.js';

/** A healthy stream (publisher + player) that must keep flowing beside the bad client. */
export async function healthyStream(t: TestContext, srv: TestServer, opts: { app?: string; name?: string; frameSize?: number } = {}): Promise<CountingPlayer> {
  const app = opts.app ?? 'live';
  const name = opts.name ?? 'healthy';
  const pub = await publishSynthetic(`${srv.url}/${app}`, name, { frameSize: opts.frameSize ?? 4000 });
  t.after(() => pub.stop());
  const player = await playCounting(`${srv.url}/${app}`, name);
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video > 5), 'the healthy stream flows');
  return player;
}

export async function stillFlowing(player: CountingPlayer, frames = 10): Promise<void> {
  const before = player.video;
  assert.ok(await until(() => player.video >= before + frames, 5000), `healthy stream stalled at ${player.video}`);
  assert.equal(player.client.closed, false);
}

export function rawSocket(t: TestContext, port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect({ host: '127.0.0.1', port }, () => resolve(s));
    s.on('error', () => undefined);
    s.once('error', reject);
    t.after(() => s.destroy());
  });
}

/** Resolves true when the socket closes within timeoutMs (does not make it read: see `paused`). */
export function closed(s: net.Socket, timeoutMs = 5000): Promise<boolean> {
  if (s.destroyed || s.readyState === 'closed') return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), timeoutMs);
    s.once('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/** Completes a real client handshake on a raw socket; later input is read and dropped unless `paused`. */
export async function handshaken(t: TestContext, port: number, opts: { paused?: boolean } = {}): Promise<net.Socket> {
  const s = await rawSocket(t, port);
  const hs = new ClientHandshake();
  await new Promise<void>((resolve, reject) => {
    const onData = (d: Buffer): void => {
      try {
        const step = hs.push(d);
        for (const b of step.send) s.write(b);
        if (step.done) {
          s.off('data', onData);
          if (opts.paused === true) s.pause();
          else s.on('data', () => undefined);
          resolve();
        }
      } catch (e) {
        reject(e as Error);
      }
    };
    s.on('data', onData);
    s.write(hs.start());
  });
  return s;
}

/** Writes `total` bytes made by repeating `unit`, in pieces, waiting for drain; stops early once the socket is gone. */
export async function flood(s: net.Socket, unit: Buffer, total: number, piece = 64 * 1024): Promise<number> {
  const reps = Math.max(1, Math.floor(piece / unit.length));
  const block = Buffer.concat(Array.from({ length: reps }, () => unit));
  let sent = 0;
  while (sent < total && !s.destroyed) {
    const ok = s.write(block);
    sent += block.length;
    if (!ok) {
      await new Promise<void>((r) => {
        const done = (): void => {
          s.off('drain', done);
          s.off('close', done);
          r();
        };
        s.once('drain', done);
        s.once('close', done);
      });
    }
  }
  return sent;
}

/** Measures the event loop: the largest delay of a 10 ms timer while it runs. */
export function loopProbe(t: TestContext): { readonly maxDelay: number; stop(): void } {
  let last = Date.now();
  const probe = {
    maxDelay: 0,
    stop: (): void => clearInterval(timer),
  };
  const timer = setInterval(() => {
    const now = Date.now();
    probe.maxDelay = Math.max(probe.maxDelay, now - last - 10);
    last = now;
  }, 10);
  t.after(() => clearInterval(timer));
  return probe;
}

export function logged(srv: TestServer, code: string): boolean {
  return srv.logs.some((l) => l.fields['code'] === code);
}

/** One tag of an Aggregate message body: type, size, timestamp, stream id (ignored), data, back pointer. */
export function aggregateTag(type: number, timestamp: number, data: Buffer): Buffer {
  const h = Buffer.alloc(11);
  h[0] = type;
  h.writeUIntBE(data.length, 1, 3);
  h.writeUIntBE(timestamp & 0xffffff, 4, 3);
  h[7] = (timestamp >>> 24) & 0xff;
  const back = Buffer.alloc(4);
  back.writeUInt32BE(11 + data.length);
  return Buffer.concat([h, data, back]);
}
