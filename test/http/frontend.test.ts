import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { isServerError, ErrorCode } from '../../src/core/errors.js';
import { memoryLogger, silentLogger, type MemoryLogEntry } from '../../src/core/log.js';
import type { HttpLocation, HttpServerConfig } from '../../src/config/types.js';
import { HttpFrontend, type RtmpStatusSource } from '../../src/http/server.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { sleep, startServer, until } from '../helpers/server.js';

function loc(p: Partial<HttpLocation> & { path: string }): HttpLocation {
  return { root: undefined, alias: undefined, rtmpStat: false, rtmpControl: false, addHeaders: [], types: {}, exact: false, defaultType: 'text/plain', ...p };
}

const emptySource: RtmpStatusSource = {
  snapshot: () => ({ startedAt: 0, now: 0, connections: [], streams: [] }),
  dropConnection: () => false,
};

/** A GET on a fresh connection (fetch's pool could reuse a socket of the stopped server). */
function status(port: number, path: string): Promise<number | undefined> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      res.resume();
      resolve(res.statusCode);
    }).on('error', reject);
  });
}

const local = (port = 0): HttpServerConfig['listen'][number] => ({ host: '127.0.0.1', port, proxyProtocol: false });

test('several server blocks, each with its own locations; an address taken twice is served by the first', async (t) => {
  const logs: MemoryLogEntry[] = [];
  const a: HttpServerConfig = { listen: [local()], locations: [loc({ path: '/stat', rtmpStat: true })] };
  const b: HttpServerConfig = { listen: [local()], locations: [loc({ path: '/control', rtmpControl: true })] };
  const fe = new HttpFrontend([a, b], { source: emptySource, logger: memoryLogger(logs) });
  await fe.start();
  t.after(() => fe.stop());
  const [pa, pb] = fe.addresses().map((x) => x.port);
  assert.equal(fe.addresses().length, 2);
  assert.equal((await fetch(`http://127.0.0.1:${pa}/stat`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${pa}/control/drop/client?app=a&name=b`)).status, 404);
  assert.equal((await fetch(`http://127.0.0.1:${pb}/control/drop/client?app=a&name=b`)).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${pb}/stat`)).status, 404);

  // the same fixed port in two blocks: one listener, a warning
  const fixed = pa!;
  await fe.stop();
  const c: HttpServerConfig = { listen: [local(fixed)], locations: [loc({ path: '/stat', rtmpStat: true })] };
  const d: HttpServerConfig = { listen: [local(fixed)], locations: [] };
  const fe2 = new HttpFrontend([c, d], { source: emptySource, logger: memoryLogger(logs) });
  await fe2.start();
  t.after(() => fe2.stop());
  assert.equal(fe2.addresses().length, 1);
  assert.equal(await status(fixed, '/stat'), 200);
  assert.ok(logs.some((e) => e.level === 'warn' && /already served/.test(e.msg)));
});

test('a listen failure rejects with ERR_HTTP_LISTEN and leaves nothing bound', async (t) => {
  const blocker = http.createServer();
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', r));
  t.after(() => new Promise<void>((r) => blocker.close(() => r())));
  const port = (blocker.address() as { port: number }).port;
  const fe = new HttpFrontend([{ listen: [local(), local(port)], locations: [] }], { source: emptySource, logger: silentLogger() });
  await assert.rejects(fe.start(), (e) => isServerError(e, ErrorCode.HttpListen) && e.message.includes(String(port)));
  assert.deepEqual(fe.addresses(), []);
});

test('stop() closes idle keep-alive connections promptly', async () => {
  const fe = new HttpFrontend([{ listen: [local()], locations: [loc({ path: '/stat', rtmpStat: true })] }], { source: emptySource, logger: silentLogger() });
  await fe.start();
  const port = fe.addresses()[0]!.port;
  const agent = new http.Agent({ keepAlive: true });
  await new Promise<void>((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path: '/stat', agent }, (res) => {
      res.resume();
      res.on('end', resolve);
    }).on('error', reject);
  });
  const t0 = Date.now();
  await fe.stop();
  assert.ok(Date.now() - t0 < 1000, 'did not wait for the keep-alive timeout');
  assert.deepEqual(fe.addresses(), []);
  agent.destroy();
});

test('end to end with the RTMP server: stat shows an ffmpeg publisher, control drops it', async (t) => {
  const rtmp = await startServer(t);
  const fe = new HttpFrontend(
    [{ listen: [local()], locations: [loc({ path: '/stat', rtmpStat: true }), loc({ path: '/control', rtmpControl: true })] }],
    { source: rtmp.server, logger: silentLogger() },
  );
  await fe.start();
  t.after(() => fe.stop());
  const base = `http://127.0.0.1:${fe.addresses()[0]!.port}`;
  const ff = await runFfmpeg(publishArgs(`${rtmp.url}/live/cam`, 20, { size: '320x240' }), 30_000);
  t.after(() => ff.kill());

  let xml = '';
  const deadline = Date.now() + 15_000;
  while (!/<width>320<\/width>/.test(xml) && Date.now() < deadline) {
    await sleep(100);
    xml = await (await fetch(`${base}/stat`)).text();
  }
  const seen = /<width>320<\/width>/.test(xml);
  assert.ok(seen, `stream with its codec details in the stat page:\n${xml}`);
  assert.match(xml, /<application>\r\n<name>live<\/name>/);
  assert.match(xml, /<name>cam<\/name>/);
  assert.match(xml, /<height>240<\/height>/);
  assert.match(xml, /<codec>H264<\/codec>/);
  assert.match(xml, /<codec>AAC<\/codec>/);
  assert.match(xml, /<sample_rate>44100<\/sample_rate>/);
  assert.match(xml, /<flashver>FMLE\/3\.0[^<]*<\/flashver>/);
  assert.match(xml, /<publishing\/>/);

  const r = await fetch(`${base}/control/drop/publisher?app=live&name=cam`);
  assert.equal(await r.text(), '1');
  const done = await Promise.race([ff.done.then(() => true), new Promise<boolean>((res) => setTimeout(() => res(false), 10_000))]);
  assert.ok(done, 'ffmpeg ended once its connection was dropped');
  assert.ok(await until(() => rtmp.server.snapshot().connections.length === 0, 5000), 'the connection is gone');
});
