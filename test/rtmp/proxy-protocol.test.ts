import assert from 'node:assert/strict';
import net from 'node:net';
import { test, type TestContext } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { ProxyProtocolParser } from '../../src/rtmp/proxy-protocol.js';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { startServer } from '../helpers/server.js';

const SIG = Buffer.from([0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d, 0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a]);

function v2(family: number, body: Buffer, cmd = 1): Buffer {
  const h = Buffer.alloc(4);
  h[0] = 0x20 | cmd;
  h[1] = (family << 4) | 1;
  h.writeUInt16BE(body.length, 2);
  return Buffer.concat([SIG, h, body]);
}

test('PROXY v1 TCP4/TCP6/UNKNOWN, split anywhere, rest kept', () => {
  const line = Buffer.from('PROXY TCP4 192.0.2.7 198.51.100.1 56324 1935\r\n');
  const tail = Buffer.from([3, 1, 2, 3]);
  const all = Buffer.concat([line, tail]);
  for (let cut = 1; cut < all.length; cut++) {
    const p = new ProxyProtocolParser();
    const a = p.push(all.subarray(0, cut));
    const step = a.done ? a : p.push(all.subarray(cut));
    assert.ok(step.done);
    assert.deepEqual(step.source, { address: '192.0.2.7', port: 56324 });
    // once done, the connection hands every later byte to the handshake: rest + later pushes = the tail
    const rest = a.done ? Buffer.concat([a.rest, all.subarray(cut)]) : step.rest;
    assert.deepEqual([...rest], [...tail], `cut at ${cut}`);
  }
  const six = new ProxyProtocolParser().push(Buffer.from('PROXY TCP6 2001:db8::1 2001:db8::2 4000 1935\r\n'));
  assert.deepEqual(six.source, { address: '2001:db8::1', port: 4000 });
  const unknown = new ProxyProtocolParser().push(Buffer.from('PROXY UNKNOWN\r\nX'));
  assert.equal(unknown.source, undefined);
  assert.deepEqual([...unknown.rest], [0x58]);
});

test('PROXY v2 IPv4, IPv6 and LOCAL', () => {
  const body4 = Buffer.from([10, 1, 2, 3, 10, 9, 9, 9, 0x1f, 0x90, 0x07, 0x8f]);
  const s4 = new ProxyProtocolParser().push(Buffer.concat([v2(1, body4), Buffer.from([3])]));
  assert.deepEqual(s4.source, { address: '10.1.2.3', port: 8080 });
  assert.deepEqual([...s4.rest], [3]);
  const body6 = Buffer.alloc(36);
  body6.writeUInt16BE(0x2001, 0);
  body6.writeUInt16BE(0x0db8, 2);
  body6.writeUInt16BE(5, 14);
  body6.writeUInt16BE(443, 32);
  assert.deepEqual(new ProxyProtocolParser().push(v2(2, body6)).source, { address: '2001:db8:0:0:0:0:0:5', port: 443 });
  assert.equal(new ProxyProtocolParser().push(v2(0, Buffer.alloc(0), 0)).source, undefined);
});

test('bad PROXY headers are refused with a coded error', () => {
  const bad = [
    Buffer.from([3, 0, 0, 0]), // a plain RTMP handshake on a proxy_protocol listener
    Buffer.from('PROXY TCP4 1.2.3.4\r\n'),
    Buffer.from('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n'),
    Buffer.from('PROXY TCP4 ' + 'x'.repeat(120)),
    Buffer.concat([SIG, Buffer.from([0x31, 0x11, 0, 0])]),
    v2(1, Buffer.alloc(4)),
  ];
  for (const b of bad) {
    assert.throws(() => new ProxyProtocolParser().push(b), (e: unknown) => isServerError(e, ErrorCode.ProxyProtocol), b.toString('latin1'));
  }
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
      try {
        new ProxyProtocolParser().push(Buffer.from(bytes));
      } catch (e) {
        assert.ok(isServerError(e, ErrorCode.ProxyProtocol));
      }
    }),
  );
});

test('listen ... proxy_protocol: access rules see the address from the header', async (t) => {
  const cfg = parseConfigText(
    'rtmp { server { listen 127.0.0.1:0 proxy_protocol; application live { live on; allow publish 203.0.113.9; deny publish all; } } }',
    'proxy.conf',
  );
  const srv = await startServer(t, cfg);
  /** a tiny load balancer that announces `from` as the client */
  async function balancer(from: string): Promise<number> {
    const lb = net.createServer((client) => {
      const up = net.connect(srv.port, '127.0.0.1', () => {
        up.write(`PROXY TCP4 ${from} 127.0.0.1 40000 ${srv.port}\r\n`);
        client.pipe(up);
        up.pipe(client);
      });
      up.on('error', () => client.destroy());
      client.on('error', () => up.destroy());
    });
    await new Promise<void>((r) => lb.listen(0, '127.0.0.1', () => r()));
    t.after(() => lb.close());
    return (lb.address() as net.AddressInfo).port;
  }
  const allowed = await RtmpClient.connect(`rtmp://127.0.0.1:${await balancer('203.0.113.9')}/live`);
  t.after(() => allowed.destroy());
  await allowed.publish('ok');
  const denied = await RtmpClient.connect(`rtmp://127.0.0.1:${await balancer('198.51.100.3')}/live`);
  t.after(() => denied.destroy());
  await assert.rejects(denied.publish('no'), /Denied/);
  assert.ok(srv.server.snapshot().connections.some((c) => c.remoteAddress === '203.0.113.9'));
});

test('a PROXY header cut across reads survives the caller reusing its read buffer', () => {
  const header = Buffer.from('PROXY TCP4 203.0.113.7 198.51.100.1 51234 1935\r\nRTMP');
  const reused = Buffer.alloc(header.length);
  const p = new ProxyProtocolParser();
  header.copy(reused, 0, 0, 20);
  assert.equal(p.push(reused.subarray(0, 20)).done, false);
  reused.fill(0x41); // the next read lands in the same buffer
  header.copy(reused, 0, 20);
  const step = p.push(reused.subarray(0, header.length - 20));
  assert.equal(step.done, true);
  assert.deepEqual(step.source, { address: '203.0.113.7', port: 51234 });
  assert.equal(step.rest.toString('latin1'), 'RTMP');
});

/** A tiny load balancer on 127.0.0.1 that announces `from` as the client to `port`. */
async function balancer(t: TestContext, port: number, from: string): Promise<number> {
  const lb = net.createServer((client) => {
    const up = net.connect(port, '127.0.0.1', () => {
      up.write(`PROXY TCP4 ${from} 127.0.0.1 40000 ${port}\r\n`);
      client.pipe(up);
      up.pipe(client);
    });
    up.on('error', () => client.destroy());
    client.on('error', () => up.destroy());
  });
  await new Promise<void>((r) => lb.listen(0, '127.0.0.1', () => r()));
  t.after(() => lb.close());
  return (lb.address() as net.AddressInfo).port;
}

test('set_real_ip_from: a PROXY header from an untrusted peer does not change the address access rules see', async (t) => {
  const cfg = parseConfigText(
    'rtmp { server { listen 127.0.0.1:0 proxy_protocol; set_real_ip_from 10.0.0.0/8; application live { live on; allow publish 203.0.113.9; deny publish all; } } }',
    'proxy.conf',
  );
  const srv = await startServer(t, cfg);
  assert.ok(!srv.logs.some((e) => /set_real_ip_from/.test(e.msg)), 'no startup warning when set_real_ip_from is set');
  // 127.0.0.1 is outside 10.0.0.0/8: its claim to be the allowed 203.0.113.9 is ignored
  const client = await RtmpClient.connect(`rtmp://127.0.0.1:${await balancer(t, srv.port, '203.0.113.9')}/live`);
  t.after(() => client.destroy());
  await assert.rejects(client.publish('spoofed'), /Denied/);
  const conns = srv.server.snapshot().connections;
  assert.ok(!conns.some((c) => c.remoteAddress === '203.0.113.9'), 'the claimed address is not used');
  const warnings = srv.logs.filter((e) => e.fields['code'] === ErrorCode.ProxyUntrusted);
  assert.equal(warnings.length, 1, 'one warning for the connection');
  assert.equal(warnings[0]!.fields['claimed'], '203.0.113.9');
});

test('set_real_ip_from: a trusted peer names the client; without any, every peer is believed and the server warns at start', async (t) => {
  const trusted = await startServer(
    t,
    parseConfigText(
      'rtmp { server { listen 127.0.0.1:0 proxy_protocol; set_real_ip_from 127.0.0.0/8; set_real_ip_from ::1; application live { live on; allow publish 203.0.113.9; deny publish all; } } }',
      'proxy.conf',
    ),
  );
  const ok = await RtmpClient.connect(`rtmp://127.0.0.1:${await balancer(t, trusted.port, '203.0.113.9')}/live`);
  t.after(() => ok.destroy());
  await ok.publish('real');
  assert.ok(trusted.server.snapshot().connections.some((c) => c.remoteAddress === '203.0.113.9'));
  assert.ok(!trusted.logs.some((e) => e.fields['code'] === ErrorCode.ProxyUntrusted));

  const open = await startServer(t, parseConfigText('rtmp { server { listen 127.0.0.1:0 proxy_protocol; application live { live on; } } }', 'proxy.conf'));
  assert.equal(open.logs.filter((e) => e.level === 'warn' && /set_real_ip_from/.test(e.msg)).length, 1, 'one startup warning');
});
