import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { createRequire } from 'node:module';
import net from 'node:net';
import { parseConfigText } from '../../src/config/load.js';
import type { ServerConfig } from '../../src/config/types.js';
import { MetricsRegistry, outputErrors } from '../../src/core/metrics.js';
import { publishSynthetic } from '../helpers/synthetic.js';
import { sleep, startServer, until, type TestServer } from '../helpers/server.js';

interface Family {
  name: string;
  help: string;
  type: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

const LOCAL = { host: '127.0.0.1', port: 0, proxyProtocol: false } as const;

function config(): ServerConfig {
  const cfg = parseConfigText(
    `rtmp { server { listen 1935; application live { live on; } } }
http { server { listen 8080;
  location / { flv_live on; }
  location /metrics { metrics; }
  location /stat { rtmp_stat all; rtmp_stat_stylesheet "/stat.xsl?a=1&b=2"; }
} }`,
    'test.conf',
  );
  return { ...cfg, rtmp: cfg.rtmp.map((s) => ({ ...s, listen: [LOCAL] })), http: cfg.http.map((h) => ({ ...h, listen: [LOCAL] })) };
}

function httpPort(s: TestServer): number {
  const a = s.server.http?.addresses()[0];
  assert.ok(a !== undefined);
  return a.port;
}

function get(port: number, path: string): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    http.get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']), body }));
    }).on('error', reject);
  });
}

/** A player that reads and throws away; closed by close(). */
async function flvPlayer(port: number, path: string): Promise<{ close(): void }> {
  const sock = net.connect({ host: '127.0.0.1', port });
  await new Promise<void>((r) => sock.once('connect', () => r()));
  sock.on('data', () => undefined);
  sock.on('error', () => undefined);
  sock.write(`GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);
  return { close: () => sock.destroy() };
}

async function scrape(port: number): Promise<Family[]> {
  const r = await get(port, '/metrics');
  assert.equal(r.status, 200);
  assert.match(r.type, /^text\/plain; version=0\.0\.4/);
  return parsePrometheus(r.body);
}

function value(fams: Family[], name: string, labels: Record<string, string> = {}): number | undefined {
  const f = fams.find((x) => x.name === name);
  const m = f?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m === undefined ? undefined : Number(m.value);
}

test('/metrics parses as Prometheus text; players, connections and bytes move as HTTP-FLV players join and leave', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  const pub = await publishSynthetic(`${s.url}/live`, 'cam', { fps: 25, frameSize: 3000 });
  t.after(() => pub.stop());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.active)));
  let m = await scrape(port);
  assert.equal(value(m, 'rtmp_streams', { app: 'live' }), 1);
  assert.equal(value(m, 'rtmp_publishers', { app: 'live', protocol: 'rtmp' }), 1);
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'http-flv' }), undefined);
  assert.ok((value(m, 'process_cpu_seconds_total') ?? 0) > 0);
  assert.ok((value(m, 'process_resident_memory_bytes') ?? 0) > 1e6);
  assert.equal(m.find((f) => f.name === 'rtmp_bytes_out_total')?.type, 'COUNTER');
  assert.equal(m.find((f) => f.name === 'rtmp_players')?.type, 'GAUGE');

  const a = await flvPlayer(port, '/live/cam.flv');
  const b = await flvPlayer(port, '/live/cam.flv');
  t.after(() => {
    a.close();
    b.close();
  });
  assert.ok(await until(() => s.server.snapshot().connections.filter((c) => c.protocol === 'http-flv').length === 2));
  await sleep(300);
  m = await scrape(port);
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'http-flv' }), 2);
  assert.equal(value(m, 'rtmp_connections', { protocol: 'http-flv' }), 2);
  const out1 = value(m, 'rtmp_bytes_out_total', { protocol: 'http-flv' }) ?? 0;
  assert.ok(out1 > 1000, `bytes out ${out1}`);

  a.close();
  assert.ok(await until(() => s.server.snapshot().connections.filter((c) => c.protocol === 'http-flv').length === 1));
  m = await scrape(port);
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'http-flv' }), 1);
  const out2 = value(m, 'rtmp_bytes_out_total', { protocol: 'http-flv' }) ?? 0;
  assert.ok(out2 >= out1, 'the counter does not go down when a player leaves');

  // a counter of the shared registry appears with its labels
  outputErrors.inc({ output: 'hls', app: 'live' });
  m = await scrape(port);
  assert.ok((value(m, 'rtmp_output_errors_total', { output: 'hls', app: 'live' }) ?? 0) >= 1);
});

test('stat XML: the stylesheet line, and HTTP-FLV players listed under their stream with their protocol', async (t) => {
  const s = await startServer(t, config());
  const port = httpPort(s);
  const pub = await publishSynthetic(`${s.url}/live`, 'cam', { fps: 25, frameSize: 3000 });
  t.after(() => pub.stop());
  assert.ok(await until(() => s.server.snapshot().streams.some((x) => x.active)));
  const p = await flvPlayer(port, '/live/cam.flv');
  t.after(() => p.close());
  assert.ok(await until(() => s.server.snapshot().connections.some((c) => c.protocol === 'http-flv')));
  const r = await get(port, '/stat');
  assert.equal(r.status, 200);
  const lines = r.body.split('\r\n');
  assert.equal(lines[0], '<?xml version="1.0" encoding="utf-8" ?>');
  assert.equal(lines[1], '<?xml-stylesheet type="text/xsl" href="/stat.xsl?a=1&amp;b=2" ?>');
  assert.match(r.body, /<client><id>flv-1<\/id><address>127\.0\.0\.1<\/address>.*<protocol>http-flv<\/protocol><\/client>/);
  assert.match(r.body, /<nclients>2<\/nclients>/);
  const json = JSON.parse((await get(port, '/stat?format=json')).body) as { rtmp: { server: { application: { live: { stream: { client: { protocol?: string }[] }[] } }[] }[] } };
  const clients = json.rtmp.server[0]?.application[0]?.live.stream[0]?.client ?? [];
  assert.deepEqual(clients.map((c) => c.protocol), [undefined, 'http-flv']);
});

test('the registry: names checked, one counter per name, series by labels', () => {
  const r = new MetricsRegistry();
  const c = r.counter('x_total', 'help', ['a']);
  assert.equal(r.counter('x_total', 'other'), c);
  c.inc({ a: '1' });
  c.inc({ a: '1' }, 2);
  c.inc({ a: '2' });
  c.inc({ a: '2' }, -5);
  assert.equal(c.get({ a: '1' }), 3);
  assert.equal(c.get({ a: '2' }), 1);
  assert.throws(() => r.counter('bad name', 'h'));
  assert.throws(() => r.counter('y', 'h', ['__reserved']));
});
