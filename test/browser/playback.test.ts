/**
 * Issue 16, "a real browser": ffmpeg publishes H.264 + AAC to OUR server over
 * RTMP; headless chromium (Debian's, driven by playwright-core) plays the
 * server's HLS with hls.js, its DASH with dash.js, its HTTP-FLV and WebSocket-FLV
 * with mpegts.js, the players served from node_modules by the test's page
 * server. Each subtest asserts that video.currentTime advances past 5 s (5 s
 * of playing: a live start point or a seek does not count) with no player
 * error and no console error; a screenshot of each playing page is kept in
 * test-artifacts/. The four play at once, from one publish.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { findDirective } from '../../src/config/directives.js';
import { parseConfigText } from '../../src/config/load.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { sleep, startServer } from '../helpers/server.js';
import { describePlay, launchChromium, requireMseH264Aac, play, startPageServer, type PageServer, type PlayerKind } from '../helpers/browser.js';
import type { BrowserContext } from 'playwright-core';

/** A protocol is tested once its branch is merged, i.e. once its directives are supported. */
function supported(name: string, context: 'application' | 'location'): boolean {
  return findDirective(name, context)?.status === 'supported';
}
const HLS = supported('hls', 'application');
const DASH = supported('dash', 'application');
const FLV = supported('flv_live', 'location');

const APP = 'live';
const STREAM = 'browser';
/** longer than the test can run (killed at its end): a stream that ends turns the DASH MPD static, the HLS playlist ended */
const PUBLISH_SECONDS = 180;

test('a real browser plays our HLS, DASH, HTTP-FLV and WebSocket-FLV', { concurrency: 4, timeout: 150_000 }, async (t) => {
  if (!HLS && !DASH && !FLV) {
    const branches = [['HLS', 'hls'], ['DASH', 'dash'], ['HTTP-FLV', 'flv'], ['WebSocket-FLV', 'flv']] as const;
    await Promise.all(branches.map(([p, b]) => t.test(p, { skip: `${b} branch not merged yet (${p} is not served)` }, () => undefined)));
    return;
  }
  const pages = await startPageServer(t);
  const dir = await mkdtemp(path.join(tmpdir(), 'browser-play-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const hlsDir = path.join(dir, 'hls');
  const dashDir = path.join(dir, 'dash');
  const appLines = [
    'live on;',
    ...(HLS ? [`hls on; hls_path ${hlsDir}; hls_fragment 1s; hls_playlist_length 10s;`] : []),
    // dash.js syncs its clock with the MPD's UTCTiming, else with time.akamai.com, which fails offline (error 16)
    ...(DASH ? [`dash on; dash_path ${dashDir}; dash_fragment 1s; dash_playlist_length 10s; dash_clock_compensation http_iso; dash_clock_helper_uri ${pages.url}/time;`] : []),
  ];
  const cors = 'add_header Access-Control-Allow-Origin *;';
  const locations = [
    ...(HLS ? [`location /hls { root ${dir}; ${cors} }`] : []),
    ...(DASH ? [`location /dash { root ${dir}; ${cors} }`] : []),
    // HTTP-FLV and WebSocket-FLV: GET|upgrade /flv/APP/NAME.flv
    ...(FLV ? [`location /flv { flv_live on; ${cors} }`] : []),
  ];
  const config = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application ${APP} { ${appLines.join(' ')} } } }
     http { server { listen 127.0.0.1:0; ${locations.join(' ')} } }`,
    'browser.conf',
  );
  const srv = await startServer(t, config);
  const httpAddr = srv.server.http?.addresses()[0];
  assert.ok(httpAddr, 'the http block listens');
  const base = `http://127.0.0.1:${httpAddr.port}`;

  const publisher = await runFfmpeg(publishArgs(`${srv.url}/${APP}/${STREAM}`, PUBLISH_SECONDS, { rate: 25, gop: 25 }), (PUBLISH_SECONDS + 30) * 1000);
  t.after(() => publisher.kill());

  const context = await launchChromium(t);
  await requireMseH264Aac(context);

  const subtests: Promise<void>[] = [
    t.test('HLS with hls.js', { skip: HLS ? false : 'hls branch not merged yet (directive `hls` is not supported)' }, async (st) => {
      const url = `${base}/hls/${STREAM}.m3u8`;
      await waitForHttp(st, url, (body) => (body.match(/#EXTINF/g) ?? []).length >= 3, 'an HLS playlist with 3 fragments');
      await playAndCheck(st, context, pages, 'hls', url);
    }),
    t.test('DASH with dash.js', { skip: DASH ? false : 'dash branch not merged yet (directive `dash` is not supported)' }, async (st) => {
      const url = `${base}/dash/${STREAM}.mpd`;
      await waitForHttp(st, url, (body) => /<S\b/.test(body), 'a DASH MPD with segments');
      await playAndCheck(st, context, pages, 'dash', url);
    }),
    t.test('HTTP-FLV with mpegts.js', { skip: FLV ? false : 'flv branch not merged yet (HTTP-FLV is not served)' }, async (st) => {
      await playAndCheck(st, context, pages, 'mpegts-http', `${base}/flv/${APP}/${STREAM}.flv`);
    }),
    t.test('WebSocket-FLV with mpegts.js', { skip: FLV ? false : 'flv branch not merged yet (WebSocket-FLV is not served)' }, async (st) => {
      await playAndCheck(st, context, pages, 'mpegts-ws', `${base.replace('http:', 'ws:')}/flv/${APP}/${STREAM}.flv`);
    }),
  ];
  await Promise.all(subtests);
});

/** Polls url until ok(body) (the publisher's first fragments are out), at most 20 s. */
async function waitForHttp(t: TestContext, url: string, ok: (body: string) => boolean, what: string): Promise<void> {
  let last = '';
  let body = '';
  const ready = async (): Promise<boolean> => {
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000) });
      body = await res.text();
      last = `${res.status}`;
      return res.ok && ok(body);
    } catch (e) {
      last = (e as Error).message;
      return false;
    }
  };
  const end = Date.now() + 20_000;
  while (Date.now() < end && !(await ready())) await sleep(250);
  assert.ok(ok(body), `no ${what} at ${url} after 20 s (last: ${last}): ${body.slice(0, 500)}`);
  t.diagnostic(`${what} ready at ${url}`);
}

async function playAndCheck(t: TestContext, context: BrowserContext, pages: PageServer, kind: PlayerKind, url: string): Promise<void> {
  const r = await play(context, pages, kind, url, { minSeconds: 5, timeoutMs: 75_000 });
  t.diagnostic(`${kind}: advanced ${r.advanced.toFixed(2)} s, currentTime ${r.currentTime.toFixed(2)} s, ${r.elapsedMs} ms after opening the page; events ${r.events.join(' ')}`);
  assert.ok(r.reached && r.currentTime > 5, `video.currentTime did not advance past 5 s: ${describePlay(r)}`);
  assert.deepEqual(r.errors, [], `player errors: ${describePlay(r)}`);
  assert.deepEqual(r.consoleErrors, [], `console errors: ${describePlay(r)}`);
}
