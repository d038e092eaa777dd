/**
 * The real-browser harness: Debian's chromium driven by playwright-core (no
 * browser download), a page server (node:http, port 0) that serves the player
 * page (test/browser/player.html) and the player libraries from node_modules
 * (hls.js, dash.js, mpegts.js), and `play()`: open a stream with one player,
 * wait until video.currentTime has advanced past a mark by playing, collect the player's error
 * events and the page's console errors, keep a screenshot in test-artifacts/.
 */
import type { TestContext } from 'node:test';
import { createHash } from 'node:crypto';
import { execFileSync } from 'node:child_process';
import { createReadStream, existsSync, mkdirSync, realpathSync, statSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { chromium, type BrowserContext, type ConsoleMessage } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);

/** Where screenshots go (git-ignored). */
export const ARTIFACTS_DIR = path.resolve(here, '../../test-artifacts');

/** The player kinds the page knows. */
export type PlayerKind = 'hls' | 'dash' | 'mpegts-http' | 'mpegts-ws';

/** Chromium's launch flags that work on CI and in containers. */
const CHROMIUM_ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--autoplay-policy=no-user-gesture-required',
] as const;

const INSTALL_HINT =
  'The browser playback test needs Chromium (it never downloads one). Install it: `sudo apt-get install chromium` ' +
  '(Debian/Ubuntu; .ci/run does this on CI), or point CHROMIUM_PATH at a Chromium/Chrome binary.';

/** The chromium binary: CHROMIUM_PATH, else /usr/bin/chromium, else chromium or chromium-browser on PATH; throws how to install it. */
export function chromiumPath(): string {
  const env = process.env['CHROMIUM_PATH'];
  if (env !== undefined && env !== '') {
    if (existsSync(env)) return env;
    throw new Error(`CHROMIUM_PATH=${env} does not exist. ${INSTALL_HINT}`);
  }
  if (existsSync('/usr/bin/chromium')) return '/usr/bin/chromium';
  for (const name of ['chromium', 'chromium-browser']) {
    try {
      const found = execFileSync('which', [name], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
      if (found !== '' && existsSync(found)) return found;
    } catch {
      // not on PATH
    }
  }
  throw new Error(`Chromium not found. ${INSTALL_HINT}`);
}

/** p, or `fallback` after ms: a wedged browser must not hang the test run (its after-hooks included). */
async function within<T>(p: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => {
    timer = setTimeout(() => resolve(fallback), ms);
  });
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}

/** Launches chromium headless with a fresh profile; closed (and the profile removed) in t.after. */
export async function launchChromium(t: TestContext): Promise<BrowserContext> {
  const executablePath = chromiumPath();
  const profile = await mkdtemp(path.join(tmpdir(), 'rtmp-browser-'));
  let context: BrowserContext;
  try {
    context = await chromium.launchPersistentContext(profile, {
      executablePath,
      headless: true,
      args: [...CHROMIUM_ARGS],
      viewport: { width: 660, height: 400 },
      timeout: 30_000,
    });
  } catch (e) {
    await rm(profile, { recursive: true, force: true });
    throw new Error(`Chromium at ${executablePath} did not start: ${(e as Error).message}\n${INSTALL_HINT}`, { cause: e });
  }
  t.after(async () => {
    await within(context.close().catch(() => undefined), 10_000, undefined);
    await rm(profile, { recursive: true, force: true });
  });
  return context;
}

/** Throws unless this chromium's MSE takes H.264 + AAC in fMP4 (what every player here feeds it). */
export async function requireMseH264Aac(context: BrowserContext): Promise<void> {
  if (await mseSupportsH264Aac(context)) return;
  throw new Error(
    `The Chromium at ${chromiumPath()} does not play H.264 + AAC in Media Source Extensions (a build without the proprietary codecs?); ` +
      `no player of this test can work with it. Use Debian's chromium package (\`sudo apt-get install chromium\`) or point CHROMIUM_PATH at Google Chrome.`,
  );
}

/** Whether this chromium's MSE takes H.264 + AAC in fMP4 (what every player here feeds it). */
export async function mseSupportsH264Aac(context: BrowserContext): Promise<boolean> {
  const page = await context.newPage();
  try {
    const r: unknown = await page.evaluate(
      `typeof MediaSource === 'function' && MediaSource.isTypeSupported('video/mp4; codecs="avc1.42E01E,mp4a.40.2"')`,
    );
    return r === true;
  } finally {
    await page.close();
  }
}

const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.m3u8': 'application/vnd.apple.mpegurl',
  '.ts': 'video/mp2t',
  '.mpd': 'application/dash+xml',
  '.m4s': 'video/iso.segment',
  '.mp4': 'video/mp4',
  '.m4a': 'audio/mp4',
  '.m4v': 'video/mp4',
  '.flv': 'video/x-flv',
};

/** The player libraries the page server serves under /lib/. */
function playerLibraries(): Readonly<Record<string, string>> {
  const hlsDir = path.dirname(require.resolve('hls.js'));
  return {
    '/lib/hls.js': path.join(hlsDir, 'hls.min.js'),
    '/lib/dash.js': require.resolve('dashjs'), // dist/modern/umd/dash.all.min.js
    '/lib/mpegts.js': require.resolve('mpegts.js'), // dist/mpegts.js
  };
}

export interface PageServer {
  /** http://127.0.0.1:PORT */
  readonly url: string;
  /** Serves files of dir under /PREFIX/ (the reference streams of the self-test). */
  mount(prefix: string, dir: string): void;
  /** Serves one file under /PREFIX/NAME over WebSocket (binary frames), as a live FLV source would. */
  mountWebSocketFile(urlPath: string, file: string): void;
}

/** The page server: player.html, /lib/*, /time (the ISO clock), mounted directories; CORS open. Stopped in t.after. */
export async function startPageServer(t: TestContext): Promise<PageServer> {
  const files: Record<string, string> = { '/player.html': path.join(here, '../browser/player.html'), ...playerLibraries() };
  const mounts = new Map<string, string>();
  const wsFiles = new Map<string, string>();
  const sockets = new Set<Socket>();

  const server = http.createServer((req, res) => {
    const u = new URL(req.url ?? '/', 'http://x');
    res.setHeader('Access-Control-Allow-Origin', '*');
    res.setHeader('Cache-Control', 'no-cache');
    if (u.pathname === '/time') {
      // a clock for dash.js (`dash_clock_compensation http_iso`): offline, its default (time.akamai.com) fails
      res.writeHead(200, { 'content-type': 'text/plain' }).end(new Date().toISOString());
      return;
    }
    let file = files[u.pathname];
    if (file === undefined) {
      const [, prefix, ...rest] = u.pathname.split('/');
      const dir = prefix === undefined ? undefined : mounts.get(prefix);
      if (dir !== undefined && rest.length > 0) {
        const candidate = path.resolve(dir, ...rest.map(decodeURIComponent));
        if (candidate.startsWith(dir + path.sep)) file = candidate;
      }
    }
    if (file === undefined || !existsSync(file) || !statSync(file).isFile()) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
      return;
    }
    res.writeHead(200, {
      'content-type': CONTENT_TYPES[path.extname(file)] ?? 'application/octet-stream',
      'content-length': statSync(file).size,
    });
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    createReadStream(file).pipe(res);
  });
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  server.on('upgrade', (req: http.IncomingMessage, socket: Socket) => {
    const u = new URL(req.url ?? '/', 'http://x');
    const file = wsFiles.get(u.pathname);
    const key = req.headers['sec-websocket-key'];
    if (file === undefined || typeof key !== 'string') {
      socket.end('HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n');
      return;
    }
    const accept = createHash('sha1').update(`${key}258EAFA5-E914-47DA-95CA-C5AB0DC85B11`).digest('base64');
    socket.write(`HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    socket.on('error', () => undefined);
    socket.on('data', () => undefined); // the client's frames (close, pong) are not read
    const stream = createReadStream(file, { highWaterMark: 64 * 1024 });
    stream.on('data', (chunk) => {
      if (!socket.writable) return;
      socket.write(wsBinaryFrame(chunk as Buffer));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const addr = server.address();
  if (addr === null || typeof addr !== 'object') throw new Error('page server has no address');
  return {
    url: `http://127.0.0.1:${addr.port}`,
    mount: (prefix, dir) => mounts.set(prefix.replace(/^\/+|\/+$/g, ''), realpathSync(dir)),
    mountWebSocketFile: (urlPath, file) => wsFiles.set(urlPath, file),
  };
}

/** One unmasked binary WebSocket frame (RFC 6455 §5.2), server to client. */
function wsBinaryFrame(payload: Buffer): Buffer {
  const FIN_BINARY = 0x82;
  const n = payload.length;
  const headerLen = n < 126 ? 2 : n < 0x10000 ? 4 : 10;
  const frame = Buffer.allocUnsafe(headerLen + n);
  frame[0] = FIN_BINARY;
  if (n < 126) frame[1] = n;
  else if (n < 0x10000) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, headerLen);
  return frame;
}

export interface PlayResult {
  readonly kind: PlayerKind;
  /** whether currentTime advanced past the mark by playing before the time was up */
  readonly reached: boolean;
  /** seconds the video advanced by playing (small forward steps of currentTime; a seek or a live start point does not count) */
  readonly advanced: number;
  readonly currentTime: number;
  /** the player library's and the <video> element's error events */
  readonly errors: readonly string[];
  /** console.error lines and uncaught exceptions of the page */
  readonly consoleErrors: readonly string[];
  /** the page's notes: loadedmetadata, playing, waiting, … */
  readonly events: readonly string[];
  /** the screenshot's path (in test-artifacts/) */
  readonly screenshot: string;
  /** from opening the page to the mark (or to the end of the wait) */
  readonly elapsedMs: number;
}

interface PageState {
  errors: string[];
  events: string[];
  currentTime: number;
  advanced: number;
}

function isPageState(v: unknown): v is PageState {
  return typeof v === 'object' && v !== null && Array.isArray((v as PageState).errors) && typeof (v as PageState).currentTime === 'number' && typeof (v as PageState).advanced === 'number';
}

/**
 * Opens the player page on `url` with one player and waits until
 * video.currentTime has advanced by more than minSeconds of playing (a live
 * player starts far from 0, and a seek is not playing), or a player error, or
 * the timeout. Takes a screenshot (test-artifacts/browser-NAME.png) at that
 * moment; never throws on a playback failure (the caller asserts on the result).
 */
export async function play(
  context: BrowserContext,
  pages: PageServer,
  kind: PlayerKind,
  url: string,
  opts: { minSeconds?: number; timeoutMs?: number; name?: string } = {},
): Promise<PlayResult> {
  const minSeconds = opts.minSeconds ?? 5;
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const name = (opts.name ?? kind).replace(/[^\w.-]+/g, '_');
  const page = await context.newPage();
  const consoleErrors: string[] = [];
  page.on('console', (m: ConsoleMessage) => {
    if (m.type() === 'error') consoleErrors.push(`console: ${m.text()}`.slice(0, 500));
  });
  page.on('pageerror', (e: Error) => consoleErrors.push(`pageerror: ${e.message}`.slice(0, 500)));
  const started = Date.now();
  const left = (): number => Math.max(1, started + timeoutMs - Date.now());
  let reached = false;
  let loaded = false;
  try {
    await page.goto(`${pages.url}/player.html?kind=${kind}&url=${encodeURIComponent(url)}`, { timeout: left() });
    loaded = true;
  } catch (e) {
    consoleErrors.push(`driver: the player page did not load: ${(e as Error).message.split('\n')[0] ?? ''}`);
  }
  if (loaded) {
    try {
      const handle = await page.waitForFunction(
        `(() => { const s = window.__player;
          return s !== undefined && window.__advanced !== undefined && (s.errors.length > 0 || window.__advanced() > ${minSeconds}) ? { advanced: window.__advanced() } : false; })()`,
        undefined,
        { polling: 200, timeout: left() },
      );
      // an object, so that an early stop on an error (advanced 0) is truthy too
      const done: unknown = await handle.jsonValue();
      const advanced = typeof done === 'object' && done !== null ? (done as { advanced?: unknown }).advanced : undefined;
      reached = typeof advanced === 'number' && advanced > minSeconds;
    } catch (e) {
      // a timeout is the result (reached false); anything else is the driver's trouble
      if ((e as Error).name !== 'TimeoutError') consoleErrors.push(`driver: ${(e as Error).message}`);
    }
  }
  const elapsedMs = Date.now() - started;
  const unanswered = { errors: ['driver: the page did not answer in 10 s'], events: [], currentTime: 0, advanced: 0 };
  const read = page
    .evaluate(
      `({ errors: window.__player ? window.__player.errors : ['page: no player state'],
        events: window.__player ? window.__player.events : [], currentTime: document.getElementById('video').currentTime,
        advanced: window.__advanced ? window.__advanced() : 0 })`,
    )
    .catch((e: Error) => ({ errors: [`driver: ${e.message}`], events: [], currentTime: 0, advanced: 0 }));
  const raw: unknown = await within<unknown>(read, 10_000, unanswered);
  const state: PageState = isPageState(raw) ? raw : { errors: ['driver: unreadable page state'], events: [], currentTime: 0, advanced: 0 };
  mkdirSync(ARTIFACTS_DIR, { recursive: true });
  const screenshot = path.join(ARTIFACTS_DIR, `browser-${name}.png`);
  await page.screenshot({ path: screenshot, timeout: 10_000 }).catch((e: Error) => consoleErrors.push(`screenshot: ${e.message}`));
  await within(page.close().catch(() => undefined), 5_000, undefined);
  return { kind, reached, advanced: state.advanced, currentTime: state.currentTime, errors: state.errors, consoleErrors, events: state.events, screenshot, elapsedMs };
}

/** A one-line account of a result for assertion messages. */
export function describePlay(r: PlayResult): string {
  return `${r.kind}: advanced ${r.advanced.toFixed(2)} s (currentTime ${r.currentTime.toFixed(2)} s) after ${r.elapsedMs} ms; errors ${JSON.stringify(r.errors)}; console ${JSON.stringify(r.consoleErrors)}; events ${r.events.join(' ')}; screenshot ${r.screenshot}`;
}
