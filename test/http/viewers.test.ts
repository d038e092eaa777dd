/**
 * HLS and DASH viewers (src/core/viewers.ts, wired in src/server/viewers.ts):
 * HTTP clients fetching a live stream's playlists and fragments are listed in
 * the stat XML under their stream with <protocol>hls</protocol> / dash, counted
 * in nclients and in /metrics' rtmp_players, and gone after 2 × the fragment.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { mkdtemp, mkdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parseConfigText } from '../../src/config/load.js';
import type { ServerConfig } from '../../src/config/types.js';
import { DEFAULT_VIEWER_TTL_MS, MIN_VIEWER_TTL_MS, ViewerRegistry, candidateNames, viewerTtl, type Viewer, type ViewerRoot } from '../../src/core/viewers.js';
import { viewerRoots } from '../../src/server/viewers.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { sleep, startServer, until } from '../helpers/server.js';

interface Family {
  name: string;
  metrics: { value: string; labels?: Record<string, string> }[];
}
const parsePrometheus = createRequire(import.meta.url)('parse-prometheus-text-format') as (text: string) => Family[];

function value(fams: Family[], name: string, labels: Record<string, string>): number | undefined {
  const m = fams.find((x) => x.name === name)?.metrics.find((x) => Object.entries(labels).every(([k, v]) => x.labels?.[k] === v));
  return m === undefined ? undefined : Number(m.value);
}

const HLS: ViewerRoot = { dir: '/srv/hls', app: 'live', protocol: 'hls', nested: false, fragmentMs: 3000 };
const DASH: ViewerRoot = { dir: '/srv/dash', app: 'live', protocol: 'dash', nested: true, fragmentMs: 5000 };

test('candidateNames: flat and nested layouts, the protocol by extension, nothing outside the directory', () => {
  assert.deepEqual(candidateNames(HLS, '/srv/hls/cam.m3u8'), ['cam']);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/cam-12.ts'), ['cam-12', 'cam']);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/my-cam-1700000000.ts'), ['my-cam-1700000000', 'my-cam']);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/cam-3.key'), ['cam-3', 'cam']);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/cam.mpd'), [], 'a DASH file is not an HLS view');
  assert.deepEqual(candidateNames(HLS, '/srv/hls/cam.html'), []);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/.m3u8'), []);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/a/b.ts'), [], 'not nested: no sub-directories');
  assert.deepEqual(candidateNames(HLS, '/srv/hlsx/cam.m3u8'), []);
  assert.deepEqual(candidateNames(HLS, '/srv/hls/../etc/cam.m3u8'), []);
  assert.deepEqual(candidateNames(HLS, '/srv/cam.m3u8'), []);
  assert.deepEqual(candidateNames(DASH, '/srv/dash/cam/index.mpd'), ['cam']);
  assert.deepEqual(candidateNames(DASH, '/srv/dash/cam/init.m4v'), ['cam']);
  assert.deepEqual(candidateNames(DASH, '/srv/dash/cam/1234.m4a'), ['cam']);
  assert.deepEqual(candidateNames(DASH, '/srv/dash/cam-init.m4v'), ['cam-init', 'cam'], 'a flat file in a nested root still names its stream');
  assert.deepEqual(candidateNames(DASH, '/srv/dash/a/b/c.m4v'), []);
});

test('fuzz: random paths never throw, and a name found is one path segment', () => {
  const alphabet = ['/', '.', '-', 'a', 'b', '..', 'm3u8', 'ts', 'mpd', 'm4v', '\0', '%', ' ', 'é', 'srv', 'hls', 'dash'];
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) % 2 ** 31;
    return seed % n;
  };
  for (let i = 0; i < 5000; i++) {
    let file = rnd(2) === 0 ? '/srv/hls/' : '/srv/dash/';
    const len = rnd(12);
    for (let j = 0; j < len; j++) file += alphabet[rnd(alphabet.length)] ?? '';
    for (const root of [HLS, DASH, { ...HLS, nested: true }]) {
      for (const name of candidateNames(root, file)) {
        assert.ok(name !== '' && !name.includes('/') && name !== '.' && name !== '..', `${file} -> ${name}`);
      }
    }
  }
});

test('viewerTtl: twice the fragment, never below the minimum; 30 s when unknown', () => {
  assert.equal(viewerTtl(5000), 10_000);
  assert.equal(viewerTtl(100), MIN_VIEWER_TTL_MS);
  assert.equal(viewerTtl(0), DEFAULT_VIEWER_TTL_MS);
  assert.equal(DEFAULT_VIEWER_TTL_MS, 30_000);
});

test('ViewerRegistry: one viewer per address and stream and protocol, live streams only, gone after its time', () => {
  const live = new Set(['live\0cam']);
  const gone: Viewer[] = [];
  const r = new ViewerRegistry({ roots: () => [HLS, DASH], isLive: (a, n) => live.has(`${a}\0${n}`) }, (v) => gone.push(v));
  const t0 = 1_000_000;
  assert.equal(r.served('/srv/hls/other.m3u8', '10.0.0.1', 100, '', t0), undefined, 'not a live stream');
  assert.equal(r.served('/tmp/cam.m3u8', '10.0.0.1', 100, '', t0), undefined, 'not in a root');
  const a = r.served('/srv/hls/cam.m3u8', '10.0.0.1', 100, 'http://page/', t0);
  assert.ok(a !== undefined);
  assert.equal(a.name, 'cam');
  assert.equal(a.protocol, 'hls');
  assert.equal(r.served('/srv/hls/cam-7.ts', '10.0.0.1', 1000, '', t0 + 500), a, 'the same viewer');
  assert.equal(a.bytesOut, 1100);
  assert.equal(a.pageUrl, 'http://page/');
  const b = r.served('/srv/hls/cam-7.ts', '10.0.0.2', 1000, '', t0 + 600);
  const d = r.served('/srv/dash/cam/index.mpd', '10.0.0.1', 50, '', t0 + 600);
  assert.ok(b !== undefined && d !== undefined && b !== a && d !== a);
  assert.equal(d.protocol, 'dash');
  assert.deepEqual(r.list(t0 + 1000).map((v) => v.id).sort(), [a.id, b.id, d.id].sort());
  // HLS ttl 6 s from the last request: a at t0+500, b at t0+600; DASH 10 s
  assert.deepEqual(r.list(t0 + 6550).map((v) => v.id).sort(), [b.id, d.id].sort());
  assert.deepEqual(gone.map((v) => [v.id, v.bytesOut]), [[a.id, 1100]]);
  assert.deepEqual(r.list(t0 + 6650).map((v) => v.id), [d.id]);
  // a returning client is a new viewer
  const a2 = r.served('/srv/hls/cam.m3u8', '10.0.0.1', 10, '', t0 + 7000);
  assert.ok(a2 !== undefined && a2.id !== a.id && a2.bytesOut === 10);
  assert.ok(r.drop(d.id));
  assert.ok(!r.drop(d.id));
  // the stream ends: its viewers go
  live.clear();
  assert.deepEqual(r.list(t0 + 7100), []);
  assert.equal(gone.length, 4);
});

test('viewerRoots: the hls_path / dash_path of the applications with hls / dash on', () => {
  const cfg = parseConfigText(
    `rtmp { server { listen 1935;
  application a { live on; hls on; hls_path /x/hls; hls_fragment 2s; hls_nested on; dash on; dash_path /x/dash; }
  application b { live on; hls off; hls_path /x/b; }
  application c { live on; hls on; }
} }`,
    'test.conf',
  );
  const roots = viewerRoots(cfg.rtmp[0]?.applications ?? []);
  assert.deepEqual(roots.map((r) => [r.app, r.protocol, r.dir, r.nested, r.fragmentMs]), [
    ['a', 'hls', path.resolve('/x/hls'), true, 2000],
    ['a', 'dash', path.resolve('/x/dash'), false, roots[1]?.fragmentMs],
  ]);
});

const LOCAL = { host: '127.0.0.1', port: 0, proxyProtocol: false } as const;

function serverConfig(dir: string): ServerConfig {
  const cfg = parseConfigText(
    `rtmp { server { listen 1935;
  application live { live on;
    hls on; hls_path ${dir}/hls; hls_fragment 1s; hls_playlist_length 4s;
    dash on; dash_path ${dir}/dash; dash_fragment 1s; dash_playlist_length 4s; dash_nested on;
  }
} }
http { server { listen 8080;
  location /hls { root ${dir}; }
  location /dash { root ${dir}; }
  location /metrics { metrics; }
  location /stat { rtmp_stat all; }
} }`,
    'test.conf',
  );
  return { ...cfg, rtmp: cfg.rtmp.map((s) => ({ ...s, listen: [LOCAL] })), http: cfg.http.map((h) => ({ ...h, listen: [LOCAL] })) };
}

/** the <client> elements of the stat XML's stream `name` */
function statClients(xml: string, name: string): string[] {
  const stream = xml.split('<stream>').find((s) => s.startsWith(`\r\n<name>${name}</name>`)) ?? '';
  return [...stream.matchAll(/<client>(.*?)<\/client>/g)].map((m) => m[1] ?? '');
}

test('HLS and DASH viewers fetching over HTTP appear in the stat XML and /metrics, and go when they stop fetching', { timeout: 60_000 }, async (t) => {
  const dir = await mkdtemp(path.join(tmpdir(), 'viewers-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'hls'));
  await mkdir(path.join(dir, 'dash'));
  const srv = await startServer(t, serverConfig(dir));
  const port = srv.server.http?.addresses()[0]?.port;
  assert.ok(port !== undefined);
  const base = `http://127.0.0.1:${port}`;
  const ff = await runFfmpeg(publishArgs(`${srv.url}/live/cam`, 40, { size: '160x120', rate: 25, gop: 25 }), 60_000);
  t.after(() => ff.kill());
  const ok = async (url: string): Promise<string | undefined> => {
    const r = await fetch(url).catch(() => undefined);
    return r?.status === 200 ? await r.text() : undefined;
  };
  const scrape = async (): Promise<Family[]> => parsePrometheus((await ok(`${base}/metrics`)) ?? '');
  const stat = async (): Promise<string> => (await ok(`${base}/stat`)) ?? '';

  // the files exist before anyone is counted: wait for them without fetching them over HTTP
  const { access } = await import('node:fs/promises');
  const exists = async (f: string): Promise<boolean> => access(f).then(() => true, () => false);
  const deadline = Date.now() + 30_000;
  while (!((await exists(path.join(dir, 'hls', 'cam.m3u8'))) && (await exists(path.join(dir, 'dash', 'cam', 'index.mpd')))) && Date.now() < deadline) await sleep(200);
  let m = await scrape();
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'hls' }), undefined, 'no HLS viewer yet');
  assert.equal(statClients(await stat(), 'cam').length, 1, 'the publisher only');

  // an HLS viewer: the playlist, then a fragment
  const playlist = await ok(`${base}/hls/cam.m3u8`);
  assert.ok(playlist !== undefined, 'the playlist is served');
  const fragment = playlist.split('\n').find((l) => l !== '' && !l.startsWith('#'));
  assert.ok(fragment !== undefined, playlist);
  const ts = await fetch(new URL(fragment, `${base}/hls/cam.m3u8`));
  assert.equal(ts.status, 200);
  const tsBytes = (await ts.arrayBuffer()).byteLength;
  // a DASH viewer: the MPD
  assert.ok((await ok(`${base}/dash/cam/index.mpd`)) !== undefined, 'the MPD is served');

  let xml = await stat();
  let clients = statClients(xml, 'cam');
  assert.equal(clients.length, 3, xml);
  const hlsClient = clients.find((c) => c.includes('<protocol>hls</protocol>'));
  const dashClient = clients.find((c) => c.includes('<protocol>dash</protocol>'));
  assert.ok(hlsClient !== undefined && dashClient !== undefined, xml);
  assert.match(hlsClient, /^<id>hls-\w+<\/id><address>127\.0\.0\.1<\/address><time>\d+<\/time>/);
  assert.match(hlsClient, /<active\/>/);
  assert.doesNotMatch(hlsClient, /<publishing\/>/);
  assert.match(xml, /<\/meta>\r\n<nclients>3<\/nclients>/);
  m = await scrape();
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'hls' }), 1);
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'dash' }), 1);
  const hlsOut = value(m, 'rtmp_bytes_out_total', { protocol: 'hls' }) ?? 0;
  assert.ok(hlsOut >= tsBytes + playlist.length, `hls bytes out ${hlsOut}`);

  // the same client fetching again is the same viewer
  await ok(`${base}/hls/cam.m3u8`);
  assert.equal(statClients(await stat(), 'cam').filter((c) => c.includes('<protocol>hls</protocol>')).length, 1);

  // the HLS viewer keeps polling, the DASH one stops: after 2 × dash_fragment (2 s) only the HLS one is left
  const stopAt = Date.now() + 3500;
  while (Date.now() < stopAt) {
    await ok(`${base}/hls/cam.m3u8`);
    await sleep(400);
  }
  xml = await stat();
  clients = statClients(xml, 'cam');
  assert.equal(clients.length, 2, xml);
  assert.ok(clients.some((c) => c.includes('<protocol>hls</protocol>')));
  m = await scrape();
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'hls' }), 1);
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'dash' }), undefined);

  // nobody fetches: the HLS viewer goes too, and the byte counter does not go down
  assert.ok(await until(() => !srv.server.snapshot().connections.some((c) => c.protocol === 'hls'), 5000));
  m = await scrape();
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'hls' }), undefined);
  assert.ok((value(m, 'rtmp_bytes_out_total', { protocol: 'hls' }) ?? 0) >= hlsOut);
  assert.equal(statClients(await stat(), 'cam').length, 1);

  // a real player: ffmpeg reading the HLS stream is one viewer while it plays
  const player = await runFfmpeg(['-i', `${base}/hls/cam.m3u8`, '-t', '4', '-f', 'null', '-'], 30_000);
  t.after(() => player.kill());
  assert.ok(await until(() => srv.server.snapshot().connections.filter((c) => c.protocol === 'hls' && c.app === 'live').length === 1, 10_000), 'ffmpeg is an HLS viewer');
  await sleep(1500);
  assert.equal(srv.server.snapshot().connections.filter((c) => c.protocol === 'hls').length, 1, 'one viewer however many requests');
  m = await scrape();
  assert.equal(value(m, 'rtmp_players', { app: 'live', protocol: 'hls' }), 1);
  await player.done;
});
