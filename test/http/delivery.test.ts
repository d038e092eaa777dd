/**
 * HLS/DASH delivery from the http{} block as nginx-rtmp configurations write
 * it: content types, cache headers, `expires`, `add_header … always`, the CORS
 * preflight `if ($request_method = 'OPTIONS') { …; return 204; }`, `return`,
 * byte ranges with If-Range, and no way out of a served root. Each server is
 * built from configuration text through the real loader.
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { readFileSync } from 'node:fs';
import { mkdtemp, mkdir, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { silentLogger } from '../../src/core/log.js';
import { ErrorCode, ServerError } from '../../src/core/errors.js';
import { parseConfigText } from '../../src/config/load.js';
import { HttpFrontend, type RtmpStatusSource } from '../../src/http/server.js';
import { defaultCacheControl, expiresHeaders, ifRangeMatches } from '../../src/http/delivery.js';

const emptySource: RtmpStatusSource = {
  snapshot: () => ({ startedAt: 0, now: 0, connections: [], streams: [] }),
  dropConnection: () => false,
};

/** Starts the http{} servers of `text` (listen on 127.0.0.1:0 written by the caller); the first one's base URL. */
async function serve(t: TestContext, text: string): Promise<string> {
  const cfg = parseConfigText(text, '/virtual/nginx.conf');
  const fe = new HttpFrontend(cfg.http, { source: emptySource, logger: silentLogger() });
  await fe.start();
  t.after(() => fe.stop());
  const a = fe.addresses()[0];
  assert.ok(a);
  return `http://127.0.0.1:${a.port}`;
}

const SECRET = 'TOP-SECRET-DO-NOT-SERVE';

/** dir/secret.txt, dir/hls/{live.m3u8, live-0.ts, live-init.m4v …}, dir/dash/…, symlinks out of hls */
async function tree(t: TestContext): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'http-delivery-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  await mkdir(path.join(dir, 'hls'));
  await mkdir(path.join(dir, 'dash'));
  await writeFile(path.join(dir, 'secret.txt'), SECRET);
  await writeFile(path.join(dir, 'hls', 'live.m3u8'), '#EXTM3U\n#EXT-X-TARGETDURATION:5\n');
  await writeFile(path.join(dir, 'hls', 'live-0.ts'), Buffer.alloc(188 * 10, 0x47));
  await writeFile(path.join(dir, 'dash', 'live.mpd'), '<MPD/>');
  await writeFile(path.join(dir, 'dash', 'live-init.m4v'), 'init-v');
  await writeFile(path.join(dir, 'dash', 'live-0.m4v'), 'frag-v');
  await writeFile(path.join(dir, 'dash', 'live-init.m4a'), 'init-a');
  await writeFile(path.join(dir, 'dash', 'live-0.m4a'), 'frag-a');
  await writeFile(path.join(dir, 'dash', 'live-1.m4s'), 'frag-s');
  await writeFile(path.join(dir, 'dash', 'vod.mp4'), 'mp4');
  await symlink(path.join(dir, 'secret.txt'), path.join(dir, 'hls', 'leak.ts'));
  await symlink(dir, path.join(dir, 'hls', 'up'));
  return dir;
}

/** A raw request: the target goes out byte for byte (fetch would normalize `..`). */
function raw(base: string, method: string, target: string): Promise<{ status: number; head: string; body: string }> {
  const port = Number(new URL(base).port);
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`${method} ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let data = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', reject);
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m === null) return reject(new Error(`no status line in ${JSON.stringify(data.slice(0, 100))}`));
      const i = data.indexOf('\r\n\r\n');
      resolve({ status: Number(m[1]), head: data.slice(0, i), body: i < 0 ? '' : data.slice(i + 4) });
    });
  });
}

test('HLS and DASH files get their content types and cache headers by default', async (t) => {
  const dir = await tree(t);
  const base = await serve(t, `http { server { listen 127.0.0.1:0; location /hls { root ${dir}; } location /dash { root ${dir}; } } }`);
  const cases: [string, string, string][] = [
    ['/hls/live.m3u8', 'application/vnd.apple.mpegurl', 'no-cache'],
    ['/hls/live-0.ts', 'video/mp2t', 'max-age=30'],
    ['/dash/live.mpd', 'application/dash+xml', 'no-cache'],
    ['/dash/live-init.m4v', 'video/mp4', 'no-cache'],
    ['/dash/live-0.m4v', 'video/mp4', 'max-age=30'],
    ['/dash/live-init.m4a', 'audio/mp4', 'no-cache'],
    ['/dash/live-0.m4a', 'audio/mp4', 'max-age=30'],
    ['/dash/live-1.m4s', 'video/mp4', 'max-age=30'],
    ['/dash/vod.mp4', 'video/mp4', 'max-age=30'],
  ];
  for (const [url, type, cc] of cases) {
    const r = await fetch(base + url);
    assert.equal(r.status, 200, url);
    assert.equal(r.headers.get('content-type'), type, url);
    assert.equal(r.headers.get('cache-control'), cc, url);
    assert.equal(r.headers.get('expires'), null, url);
    assert.equal(Buffer.from(await r.arrayBuffer()).length, (await readFile(path.join(dir, url))).length, url);
  }
});

test('nginx-rtmp README delivery: types {} and add_header Cache-Control replace the defaults; expires sets both headers', async (t) => {
  const dir = await tree(t);
  const base = await serve(
    t,
    `http { server { listen 127.0.0.1:0;
      location /hls { types { application/vnd.apple.mpegurl m3u8; video/mp2t ts; } root ${dir}; add_header Cache-Control no-cache; }
      location /dash { root ${dir}; expires 24h; }
      location /x { alias ${dir}/dash; expires -1; }
      location /e { alias ${dir}/dash; expires epoch; }
      location /m { alias ${dir}/dash; expires max; }
      location /o { alias ${dir}/dash; expires off; }
    } }`,
  );
  const ts = await fetch(`${base}/hls/live-0.ts`);
  assert.equal(ts.headers.get('content-type'), 'video/mp2t');
  assert.equal(ts.headers.get('cache-control'), 'no-cache', 'the configured header, not the fragment default');
  const before = Date.now();
  const mpd = await fetch(`${base}/dash/live.mpd`);
  assert.equal(mpd.headers.get('cache-control'), 'max-age=86400');
  const expires = Date.parse(mpd.headers.get('expires') ?? '');
  assert.ok(Math.abs(expires - (before + 86_400_000)) < 3000, `Expires ${mpd.headers.get('expires')}`);
  const neg = await fetch(`${base}/x/live-0.m4v`);
  assert.equal(neg.headers.get('cache-control'), 'no-cache');
  assert.ok(Date.parse(neg.headers.get('expires') ?? '') < Date.now());
  const epoch = await fetch(`${base}/e/live.mpd`);
  assert.equal(epoch.headers.get('expires'), 'Thu, 01 Jan 1970 00:00:01 GMT');
  const max = await fetch(`${base}/m/live.mpd`);
  assert.equal(max.headers.get('cache-control'), 'max-age=315360000');
  const off = await fetch(`${base}/o/live.mpd`);
  assert.equal(off.headers.get('cache-control'), null, 'expires off: no default either');
  assert.equal(off.headers.get('expires'), null);
  const missing = await fetch(`${base}/dash/nothing.m4s`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('cache-control'), null, 'no expires on a 404');
});

const CORS_LOCATION = (dir: string): string => `
  location / {
    add_header 'Cache-Control' 'no-cache';
    add_header 'Access-Control-Allow-Origin' '*' always;
    add_header 'Access-Control-Expose-Headers' 'Content-Length';
    if ($request_method = 'OPTIONS') {
      add_header 'Access-Control-Allow-Origin' '*';
      add_header 'Access-Control-Allow-Methods' 'GET, OPTIONS';
      add_header 'Access-Control-Max-Age' 1728000;
      add_header 'Content-Type' 'text/plain charset=UTF-8';
      add_header 'Content-Length' 0;
      return 204;
    }
    types { application/dash+xml mpd; application/vnd.apple.mpegurl m3u8; video/mp2t ts; }
    root ${dir}/;
  }`;

test('CORS: the OPTIONS preflight block answers 204 with its own headers; GET gets the location headers; always reaches a 404', async (t) => {
  const dir = await tree(t);
  const base = await serve(t, `http { server { listen 127.0.0.1:0; ${CORS_LOCATION(dir)} } }`);
  const pre = await fetch(`${base}/hls/live.m3u8`, { method: 'OPTIONS', headers: { Origin: 'https://player.example', 'Access-Control-Request-Method': 'GET' } });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-allow-origin'), '*');
  assert.equal(pre.headers.get('access-control-allow-methods'), 'GET, OPTIONS');
  assert.equal(pre.headers.get('access-control-max-age'), '1728000');
  assert.equal(pre.headers.get('access-control-expose-headers'), null, 'the if block has its own add_header lines: the outer ones do not apply');
  assert.equal(pre.headers.get('cache-control'), null);
  assert.equal(await pre.text(), '');

  const get = await fetch(`${base}/hls/live.m3u8`, { headers: { Origin: 'https://player.example' } });
  assert.equal(get.status, 200);
  assert.equal(get.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  assert.equal(get.headers.get('access-control-allow-origin'), '*');
  assert.equal(get.headers.get('access-control-expose-headers'), 'Content-Length');
  assert.equal(get.headers.get('cache-control'), 'no-cache');
  assert.match(await get.text(), /^#EXTM3U/);

  const missing = await fetch(`${base}/hls/gone.ts`);
  assert.equal(missing.status, 404);
  assert.equal(missing.headers.get('access-control-allow-origin'), '*', '`always` header on an error');
  assert.equal(missing.headers.get('access-control-expose-headers'), null, 'no header without `always` on an error');

  const post = await fetch(`${base}/hls/live.m3u8`, { method: 'POST', body: 'x' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('access-control-allow-origin'), '*');
});

test('the restream + HLS tutorial fixture serves its HLS directory with CORS (the file as written, root moved)', async (t) => {
  const dir = await tree(t);
  const fixture = fileURLToPath(new URL('../config/fixtures/real/restream-hls-tutorial.conf', import.meta.url));
  const text = await readFile(fixture, 'utf8');
  const http = text.slice(text.indexOf('\nhttp {')).replace('listen 8080;', 'listen 127.0.0.1:0;').replace('root /tmp/;', `root ${dir}/;`);
  assert.notEqual(http.indexOf(dir), -1);
  const base = await serve(t, http);
  const pre = await fetch(`${base}/hls/live.m3u8`, { method: 'OPTIONS' });
  assert.equal(pre.status, 204);
  assert.equal(pre.headers.get('access-control-max-age'), '1728000');
  const ts = await fetch(`${base}/hls/live-0.ts`);
  assert.equal(ts.status, 200);
  assert.equal(ts.headers.get('content-type'), 'video/mp2t');
  assert.equal(ts.headers.get('access-control-allow-origin'), '*');
});

test('if with != and without return, and a location return', async (t) => {
  const dir = await tree(t);
  const base = await serve(
    t,
    `http { server { listen 127.0.0.1:0;
      if ($request_method = DELETE) { return 403; }
      location /hls { root ${dir}; if ($request_method != GET) { add_header X-Not-Get yes always; } }
      location = /health { return 200 "ok\\n"; }
      location /old { return 301 http://example.test/new; }
      location /gone { return 410; }
    } }`,
  );
  const head = await fetch(`${base}/hls/live.m3u8`, { method: 'HEAD' });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('x-not-get'), 'yes');
  const get = await fetch(`${base}/hls/live.m3u8`);
  assert.equal(get.headers.get('x-not-get'), null);
  assert.equal((await fetch(`${base}/hls/live.m3u8`, { method: 'DELETE' })).status, 403, 'the server-level if applies in every location');
  const health = await fetch(`${base}/health`);
  assert.equal(health.status, 200);
  assert.equal(await health.text(), 'ok\n');
  const old = await fetch(`${base}/old/x`, { redirect: 'manual' });
  assert.equal(old.status, 301);
  assert.equal(old.headers.get('location'), 'http://example.test/new');
  assert.equal((await fetch(`${base}/gone`)).status, 410);
});

test('variables: $http_origin and friends in add_header and return are the request\'s', async (t) => {
  const dir = await tree(t);
  const base = await serve(
    t,
    `http { server { listen 127.0.0.1:0;
      location /hls { root ${dir}; add_header Access-Control-Allow-Origin $http_origin always; add_header X-Seen "\${request_method} $uri?$args"; }
      location /go { return 301 $scheme://$host:8443$request_uri; }
    } }`,
  );
  const r = await fetch(`${base}/hls/live.m3u8?a=1`, { headers: { Origin: 'https://player.example' } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), 'https://player.example');
  assert.equal(r.headers.get('x-seen'), 'GET /hls/live.m3u8?a=1');
  const none = await fetch(`${base}/hls/nothing.ts`);
  assert.equal(none.status, 404);
  assert.equal(none.headers.get('access-control-allow-origin'), '', 'an absent header expands to nothing, as in nginx');
  const go = await fetch(`${base}/go/x?y=2`, { redirect: 'manual' });
  assert.equal(go.status, 301);
  assert.equal(go.headers.get('location'), 'http://127.0.0.1:8443/go/x?y=2');
});

test('byte ranges: 206 with Content-Range, 416 past the end, If-Range honoured only for the current Last-Modified', async (t) => {
  const dir = await tree(t);
  const base = await serve(t, `http { server { listen 127.0.0.1:0; location /hls { root ${dir}; } } }`);
  const whole = await fetch(`${base}/hls/live-0.ts`);
  const lastModified = whole.headers.get('last-modified') ?? '';
  assert.equal(whole.headers.get('accept-ranges'), 'bytes');
  const part = await fetch(`${base}/hls/live-0.ts`, { headers: { Range: 'bytes=188-375' } });
  assert.equal(part.status, 206);
  assert.equal(part.headers.get('content-range'), 'bytes 188-375/1880');
  assert.equal((await part.arrayBuffer()).byteLength, 188);
  const suffix = await fetch(`${base}/hls/live-0.ts`, { headers: { Range: 'bytes=-100' } });
  assert.equal(suffix.status, 206);
  assert.equal(suffix.headers.get('content-range'), 'bytes 1780-1879/1880');
  const past = await fetch(`${base}/hls/live-0.ts`, { headers: { Range: 'bytes=5000-' } });
  assert.equal(past.status, 416);
  assert.equal(past.headers.get('content-range'), 'bytes */1880');
  const same = await fetch(`${base}/hls/live-0.ts`, { headers: { Range: 'bytes=0-9', 'If-Range': lastModified } });
  assert.equal(same.status, 206);
  const changed = await fetch(`${base}/hls/live-0.ts`, { headers: { Range: 'bytes=0-9', 'If-Range': 'Mon, 01 Jan 2001 00:00:00 GMT' } });
  assert.equal(changed.status, 200);
  assert.equal((await changed.arrayBuffer()).byteLength, 1880);
  const etag = await fetch(`${base}/hls/live-0.ts`, { headers: { Range: 'bytes=0-9', 'If-Range': '"abc"' } });
  assert.equal(etag.status, 200);
});

test('no way out of a served HLS root: dot segments (plain and encoded), symlinks, alias prefix tricks', async (t) => {
  const dir = await tree(t);
  // root: the served tree is dir/pub (its hls/ a copy of the stream files), the secret one level above it
  const pub = path.join(dir, 'pub');
  await mkdir(path.join(pub, 'hls'), { recursive: true });
  await writeFile(path.join(pub, 'hls', 'live.m3u8'), '#EXTM3U\n');
  await symlink(path.join(dir, 'secret.txt'), path.join(pub, 'hls', 'leak.ts'));
  await symlink(dir, path.join(pub, 'hls', 'up'));
  const base = await serve(t, `http { server { listen 127.0.0.1:0; location /hls { root ${pub}; } location /live { alias ${dir}/hls; } } }`);
  const attempts = [
    '/hls/../secret.txt',
    '/hls/%2e%2e/secret.txt',
    '/hls/%2E%2E/%2e%2e/secret.txt',
    '/hls/..%2fsecret.txt',
    '/hls/%2e%2e%2fsecret.txt',
    '/live/../secret.txt',
    '/live/%2e%2e/secret.txt',
    '/live/%2e%2e%2f%2e%2e%2fsecret.txt',
    '/live..%2fsecret.txt',
    '/live/..%5csecret.txt',
    '/hls/leak.ts',
    '/hls/up/secret.txt',
    '/live/up/secret.txt',
    '/live/leak.ts',
    '/hls/%00.m3u8',
    '/hls/live.m3u8%00.txt',
    '/%2e%2e/%2e%2e/etc/passwd',
  ];
  for (const target of attempts) {
    const r = await raw(base, 'GET', target);
    assert.ok([400, 403, 404].includes(r.status), `${target}: ${r.status}`);
    assert.ok(!r.body.includes(SECRET), `${target} leaked the secret`);
  }
  assert.equal((await raw(base, 'GET', '/live/live.m3u8')).status, 200);
  assert.equal((await raw(base, 'GET', '/hls/./live.m3u8')).status, 200);
});

test('bad if / return / expires / add_header lines are refused at their position', () => {
  const bad: [string, RegExp][] = [
    ['if ($http_origin = x) { return 204; }', /^t\.conf:2:1: "if": condition on "\$http_origin"; only "if \(\$request_method = METHOD\)"/],
    ['if ($request_method ~ GET) { return 204; }', /"if": operator "~"/],
    ['if $request_method = GET { return 204; }', /"if": the condition must be in parentheses/],
    ['if ($request_method = GET POST) { return 204; }', /"if": expected exactly one method/],
    ['if ($request_method = options) { return 204; }', /"options" is not an HTTP method/],
    ['if ($request_method = GET) { rewrite ^ /x; }', /directive "rewrite" is not supported inside "if"/],
    ['if ($request_method = GET) { return 204; return 200; }', /"return" directive is duplicate/],
    ['if ($request_method = GET) { location /x { } }', /a block \("location"\) inside "if"/],
    ['if ($request_method = GET) { add_header X; }', /invalid number of arguments in "add_header"/],
    ['if ($request_method = GET) { add_header X y sometimes; }', /expected "always", not "sometimes"/],
    ['if ($request_method = GET) { return abc; }', /invalid return code "abc"/],
    ['return 99;', /invalid return code "99"/],
    ['return 700;', /outside 100-599/],
    ['return 200; return 204;', /"return" directive is duplicate/],
    ['expires soon;', /"expires": invalid value "soon"/],
    ['add_header X $cookie_a;', /"add_header": variable "\$cookie_a" is not supported/],
    ['return 302 http://x/$foo;', /"return": variable "\$foo" is not supported/],
    ['expires later 1h;', /expected "modified" before the time/],
    ['expires @15h;', /a time of day\) is not supported/],
    ['expires 1h; expires 2h;', /"expires" directive is duplicate/],
    ['if ($request_method = GET);', /has no opening "\{"/],
  ];
  for (const [inner, re] of bad) {
    const text = `http { server { listen 127.0.0.1:0; location /l {\n${inner}\n} } }`;
    assert.throws(
      () => parseConfigText(text, 't.conf'),
      (e: unknown) => e instanceof ServerError && re.test(e.message) && (e.code === ErrorCode.ConfigBadValue || e.code === ErrorCode.ConfigSyntax),
      inner,
    );
  }
  assert.throws(() => parseConfigText('http { if ($request_method = GET) { return 204; } }', 't.conf'), /directive "if" is not allowed here/);
  assert.throws(() => parseConfigText('rtmp { server { return 204; } }', 't.conf'), /not allowed here/);
});

test('fuzz: random if conditions and bodies load or fail with a ServerError, never anything else', () => {
  const words = ['(', ')', '($request_method', 'GET)', '=', '!=', "'OPTIONS'", 'return', '204', 'add_header', 'X', 'always', ';', '{', '}', '"a b"', '$x', '~', '(GET', ')('];
  let seed = 12345;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  for (let i = 0; i < 400; i++) {
    const cond = Array.from({ length: 1 + rnd(5) }, () => words[rnd(words.length)]).join(' ');
    const body = Array.from({ length: rnd(6) }, () => words[rnd(words.length)]).join(' ');
    const text = `http { server { listen 127.0.0.1:0; location /l { if ${cond} { ${body} } } } }`;
    try {
      parseConfigText(text, 'f.conf');
    } catch (e) {
      assert.ok(e instanceof ServerError, `${text}: ${String(e)}`);
    }
  }
});

test('helpers: default cache control, expires arithmetic, If-Range comparison', () => {
  assert.equal(defaultCacheControl('/a/b/x.M3U8'), 'no-cache');
  assert.equal(defaultCacheControl('/a/init.mp4'), 'no-cache');
  assert.equal(defaultCacheControl('/a/12.ts'), 'max-age=30');
  assert.equal(defaultCacheControl('/a/page.html'), undefined);
  const now = Date.UTC(2026, 0, 1);
  assert.deepEqual(expiresHeaders({ kind: 'offset', seconds: 60, modified: false }, now, undefined), { Expires: new Date(now + 60_000).toUTCString(), 'Cache-Control': 'max-age=60' });
  assert.deepEqual(expiresHeaders({ kind: 'offset', seconds: 60, modified: true }, now, now - 30_000), { Expires: new Date(now + 30_000).toUTCString(), 'Cache-Control': 'max-age=30' });
  assert.equal(expiresHeaders({ kind: 'offset', seconds: 60, modified: true }, now, now - 120_000)['Cache-Control'], 'no-cache');
  assert.equal(ifRangeMatches(undefined, 'x'), true);
  assert.equal(ifRangeMatches('W/"x"', 'W/"x"'), false);
});

test('fuzz corpus test/fuzz/config: every file, every truncation and random byte changes load or fail with a ServerError', () => {
  const dir = fileURLToPath(new URL('../fuzz/config/', import.meta.url));
  const files = ['cors-preflight.conf', 'if-glued.conf', 'if-bad.conf'];
  let seed = 777;
  const rnd = (n: number): number => {
    seed = (seed * 1103515245 + 12345) & 0x7fffffff;
    return seed % n;
  };
  const alphabet = `(){};'"$=! \\\n#~*-@`;
  const loads = (text: string): boolean => {
    try {
      parseConfigText(text, 'fuzz.conf');
      return true;
    } catch (e) {
      assert.ok(e instanceof ServerError, `${JSON.stringify(text)}: ${String(e)}`);
      return false;
    }
  };
  const results: boolean[] = [];
  for (const f of files) {
    const text = readFileSync(path.join(dir, f), 'utf8');
    results.push(loads(text));
    for (let i = 0; i < text.length; i += 3) loads(text.slice(0, i));
    for (let k = 0; k < 300; k++) {
      const chars = [...text];
      for (let m = 0; m < 1 + rnd(4); m++) chars[rnd(chars.length)] = alphabet[rnd(alphabet.length)] ?? ' ';
      loads(chars.join(''));
    }
  }
  assert.deepEqual(results, [true, true, false], 'the seeds: two good files, one bad');
});
