import { test } from 'node:test';
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  ClientFrameReader,
  MAX_CLIENT_FRAME,
  WsOpcode,
  checkUpgrade,
  encodeFrame,
  frameHeaderSize,
  upgradeResponse,
  websocketAccept,
  type ClientEvent,
} from '../../src/http/websocket.js';

function masked(opcode: number, payload: Buffer, fin = true): Buffer {
  const mask = randomBytes(4);
  const n = payload.length;
  const head = n < 126 ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | n]) : n <= 0xffff ? Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 126, n >> 8, n & 0xff]) : Buffer.concat([Buffer.from([(fin ? 0x80 : 0) | opcode, 0x80 | 127]), Buffer.from([0, 0, 0, 0]), Buffer.from([(n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff])]);
  return Buffer.concat([head, mask, Buffer.from(payload.map((b, i) => b ^ mask[i & 3]!))]);
}

/** Feeds bytes one by one and whole: both must give the same events. */
function read(bytes: Buffer): ClientEvent[] {
  const whole = new ClientFrameReader().push(bytes);
  const r = new ClientFrameReader();
  const split: ClientEvent[] = [];
  for (let i = 0; i < bytes.length; i++) split.push(...r.push(bytes.subarray(i, i + 1)));
  assert.deepEqual(split, whole);
  return whole;
}

test('Sec-WebSocket-Accept: the RFC 6455 example', () => {
  assert.equal(websocketAccept('dGhlIHNhbXBsZSBub25jZQ=='), 's3pPLMBiTxaQ9kYGzzhZRbK+xOo=');
  const r = upgradeResponse('dGhlIHNhbXBsZSBub25jZQ==', [['X-A', 'b']]).toString('latin1');
  assert.match(r, /^HTTP\/1\.1 101 Switching Protocols\r\n/);
  assert.match(r, /Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK\+xOo=\r\n/);
  assert.match(r, /X-A: b\r\n\r\n$/);
});

test('checkUpgrade: needs GET, Upgrade: websocket, Connection: upgrade, version 13 and a 16-byte key', () => {
  const good = { upgrade: 'websocket', connection: 'keep-alive, Upgrade', 'sec-websocket-version': '13', 'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==' };
  assert.deepEqual(checkUpgrade('GET', good), { ok: true, key: 'dGhlIHNhbXBsZSBub25jZQ==' });
  assert.equal(checkUpgrade('POST', good).ok, false);
  assert.equal(checkUpgrade('GET', { ...good, upgrade: 'h2c' }).ok, false);
  assert.equal(checkUpgrade('GET', { ...good, connection: 'close' }).ok, false);
  assert.equal(checkUpgrade('GET', { ...good, 'sec-websocket-version': '8' }).ok, false);
  assert.equal(checkUpgrade('GET', { ...good, 'sec-websocket-key': 'c2hvcnQ=' }).ok, false);
  assert.equal(checkUpgrade('GET', { ...good, 'sec-websocket-key': undefined }).ok, false);
});

test('server frames: 7-bit, 16-bit and 64-bit lengths, unmasked, final', () => {
  for (const n of [0, 125, 126, 65535, 65536, 200_000]) {
    const f = encodeFrame(WsOpcode.Binary, Buffer.alloc(n, 7));
    assert.equal(f.length, frameHeaderSize(n) + n);
    assert.equal(f[0], 0x82);
    assert.equal(f[1]! & 0x80, 0);
    const len7 = f[1]! & 0x7f;
    const len = len7 === 126 ? f.readUInt16BE(2) : len7 === 127 ? f.readUInt32BE(6) : len7;
    assert.equal(len, n);
  }
});

test('client frames: ping and close are unmasked and reported, data skipped, whatever the split', () => {
  const ev = read(Buffer.concat([masked(WsOpcode.Ping, Buffer.from('abc')), masked(WsOpcode.Binary, Buffer.alloc(70_000, 1)), masked(WsOpcode.Text, Buffer.from('x')), masked(WsOpcode.Pong, Buffer.from('p')), masked(WsOpcode.Close, Buffer.from([0x03, 0xe8])), masked(WsOpcode.Ping, Buffer.from('after close'))]));
  assert.deepEqual(ev, [
    { type: 'ping', payload: Buffer.from('abc') },
    { type: 'close', code: 1000 },
  ]);
  assert.deepEqual(read(masked(WsOpcode.Close, Buffer.alloc(0))), [{ type: 'close', code: undefined }]);
});

test('client frames: bad input ends the reader with a protocol error', () => {
  const err = (b: Buffer): number | undefined => {
    const ev = read(b);
    assert.equal(ev.length, 1);
    return ev[0]?.type === 'error' ? ev[0].code : undefined;
  };
  assert.equal(err(Buffer.from([0x82, 0x01, 0x61])), 1002, 'unmasked');
  assert.equal(err(masked(WsOpcode.Ping, Buffer.alloc(126))), 1002, 'control over 125');
  assert.equal(err(masked(WsOpcode.Ping, Buffer.from('a'), false)), 1002, 'fragmented control');
  assert.equal(err(masked(0x3, Buffer.from('a'))), 1002, 'unknown opcode');
  assert.equal(err(Buffer.from([0xc2, 0x80, 0, 0, 0, 0])), 1002, 'reserved bit');
  assert.equal(err(masked(WsOpcode.Close, Buffer.from([3]))), 1002, 'close of one byte');
  assert.equal(err(masked(WsOpcode.Binary, Buffer.alloc(MAX_CLIENT_FRAME + 1))), 1009, 'too big');
  assert.equal(err(Buffer.from([0x82, 0xff, 0x7f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0])), 1009, '2^63 length');
  // truncated: no event, no throw
  assert.deepEqual(read(Buffer.from([0x89, 0xfe, 0x00])), []);
});

test('client frames: random bytes and the fuzz corpus never throw, and stop after an error or close', () => {
  const dir = join(fileURLToPath(new URL('.', import.meta.url)), '..', 'fuzz', 'websocket');
  const corpus = readdirSync(dir).map((f) => readFileSync(join(dir, f)));
  assert.ok(corpus.length >= 8);
  const inputs = [...corpus];
  for (let i = 0; i < 300; i++) inputs.push(randomBytes(1 + (i % 64) * 7));
  for (const c of corpus) {
    // mutate each corpus file a few times
    for (let k = 0; k < 20; k++) {
      const m = Buffer.from(c);
      if (m.length > 0) m[k % m.length] = m[k % m.length]! ^ (1 << (k % 8));
      inputs.push(m);
    }
  }
  for (const input of inputs) {
    const ev = read(input);
    const last = ev.findIndex((e) => e.type === 'error' || e.type === 'close');
    assert.ok(last === -1 || last === ev.length - 1, 'nothing after an error or close');
  }
});
