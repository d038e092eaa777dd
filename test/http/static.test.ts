import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { silentLogger } from '../../src/core/log.js';
import type { HttpLocation, HttpServerConfig } from '../../src/config/types.js';
import { HttpFrontend, type RtmpStatusSource } from '../../src/http/server.js';
import { matchLocation, parseRange, parseRequestTarget } from '../../src/http/static.js';

function loc(p: Partial<HttpLocation> & { path: string }): HttpLocation {
  return { root: undefined, alias: undefined, rtmpStat: false, rtmpControl: false, addHeaders: [], types: {}, exact: false, defaultType: 'text/plain', ...p };
}

const emptySource: RtmpStatusSource = {
  snapshot: () => ({ startedAt: 0, now: 0, connections: [], streams: [] }),
  dropConnection: () => false,
};

async function start(t: TestContext, locations: HttpLocation[]): Promise<string> {
  const cfg: HttpServerConfig = { listen: [{ host: '127.0.0.1', port: 0, proxyProtocol: false }], locations };
  const fe = new HttpFrontend([cfg], { source: emptySource, logger: silentLogger() });
  await fe.start();
  t.after(() => fe.stop());
  const a = fe.addresses()[0];
  assert.ok(a);
  return `http://127.0.0.1:${a.port}`;
}

/** A raw HTTP/1.1 GET: the request target goes out byte for byte (fetch would normalize it). */
function rawGet(base: string, target: string): Promise<{ status: number; body: string }> {
  const port = Number(new URL(base).port);
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1', () => sock.write(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`));
    let data = '';
    sock.setEncoding('latin1');
    sock.on('data', (d: string) => (data += d));
    sock.on('error', reject);
    sock.on('close', () => {
      const m = /^HTTP\/1\.1 (\d{3})/.exec(data);
      if (m === null) return reject(new Error(`no status line in ${JSON.stringify(data.slice(0, 100))}`));
      const i = data.indexOf('\r\n\r\n');
      resolve({ status: Number(m[1]), body: i < 0 ? '' : data.slice(i + 4) });
    });
  });
}

const SECRET = 'TOP-SECRET-DO-NOT-SERVE';

/** tmp/secret.txt next to tmp/www (the root), and a few files inside. */
async function tree(t: TestContext): Promise<{ dir: string; www: string }> {
  const dir = await mkdtemp(path.join(tmpdir(), 'http-static-'));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const www = path.join(dir, 'www');
  await mkdir(path.join(www, 'sub'), { recursive: true });
  await mkdir(path.join(www, 'withindex'));
  await writeFile(path.join(dir, 'secret.txt'), SECRET);
  await writeFile(path.join(www, 'index.html'), '<h1>home</h1>');
  await writeFile(path.join(www, 'withindex', 'index.html'), 'inner index');
  await writeFile(path.join(www, 'live.m3u8'), '#EXTM3U\n');
  await writeFile(path.join(www, 'seg0.ts'), Buffer.alloc(188 * 4, 0x47));
  await writeFile(path.join(www, 'data.bin'), Buffer.from('0123456789'));
  await writeFile(path.join(www, 'thing.foo'), 'custom');
  await writeFile(path.join(www, 'noext'), 'plain');
  await writeFile(path.join(www, 'sub', 'a b.txt'), 'spaced');
  await symlink(path.join(dir, 'secret.txt'), path.join(www, 'link.txt'));
  await symlink(dir, path.join(www, 'updir'));
  await symlink(path.join(www, 'data.bin'), path.join(www, 'inside-link.bin'));
  return { dir, www };
}

test('parseRequestTarget decodes once, normalizes, refuses escapes and NUL', () => {
  assert.equal(parseRequestTarget('/a/./b//c')?.path, '/a/b/c');
  assert.equal(parseRequestTarget('/a/b/../c/')?.path, '/a/c/');
  assert.equal(parseRequestTarget('/a/b/..')?.path, '/a/');
  assert.equal(parseRequestTarget('/a%20b%2Fc')?.path, '/a b/c');
  assert.equal(parseRequestTarget('/%252e%252e/x')?.path, '/%2e%2e/x', 'decoded once only');
  assert.equal(parseRequestTarget('/x?app=live&name=a%26b')?.query.get('name'), 'a&b');
  assert.equal(parseRequestTarget('http://host:8080/s/t?q=1')?.path, '/s/t');
  for (const bad of ['/..', '/../x', '/a/../../x', '/%2e%2e/x', '/%2E%2E%2Fx', '/a%00b', '/a%5c..%5cb', '/%c0%ae%c0%ae/', '/%zz', 'x/y', '*', 'http://h/../x']) {
    assert.equal(parseRequestTarget(bad), undefined, bad);
  }
});

test('matchLocation: exact beats prefix, longest prefix wins', () => {
  const locs = [loc({ path: '/' }), loc({ path: '/hls' }), loc({ path: '/hls/live' }), loc({ path: '/hls/x.ts', exact: true }), loc({ path: '/stat', exact: true })];
  const m = (u: string): string | undefined => {
    const l = matchLocation(locs, u);
    return l === undefined ? undefined : `${l.exact === true ? '=' : ''}${l.path}`;
  };
  assert.equal(m('/index.html'), '/');
  assert.equal(m('/hls'), '/hls');
  assert.equal(m('/hlsfoo'), '/hls', 'nginx prefixes are plain string prefixes');
  assert.equal(m('/hls/a.ts'), '/hls');
  assert.equal(m('/hls/live/a.ts'), '/hls/live');
  assert.equal(m('/hls/x.ts'), '=/hls/x.ts');
  assert.equal(m('/hls/x.tsx'), '/hls');
  assert.equal(m('/stat'), '=/stat');
  assert.equal(m('/stat/'), '/');
  assert.equal(matchLocation([loc({ path: '/hls' })], '/other'), undefined);
});

test('parseRange: one bytes= range', () => {
  assert.deepEqual(parseRange('bytes=0-3', 10), { start: 0, end: 3 });
  assert.deepEqual(parseRange('bytes=5-', 10), { start: 5, end: 9 });
  assert.deepEqual(parseRange('bytes=-4', 10), { start: 6, end: 9 });
  assert.deepEqual(parseRange('bytes=8-100', 10), { start: 8, end: 9 });
  assert.deepEqual(parseRange('bytes=-100', 10), { start: 0, end: 9 });
  assert.equal(parseRange('bytes=10-', 10), 'invalid');
  assert.equal(parseRange('bytes=5-2', 10), 'invalid');
  assert.equal(parseRange('bytes=-0', 10), 'invalid');
  assert.equal(parseRange('bytes=0-1,4-5', 10), undefined, 'multiple ranges: whole file');
  assert.equal(parseRange('items=0-1', 10), undefined);
  assert.equal(parseRange(undefined, 10), undefined);
});

test('static files: types, headers, HEAD, 404, 403 on directories, index.html, range', async (t) => {
  const { www } = await tree(t);
  const base = await start(t, [
    loc({ path: '/', root: www, addHeaders: [['X-Root', 'yes']], types: { foo: 'application/x-foo', html: 'text/html' } }),
    loc({ path: '/media/', alias: `${www}/`, addHeaders: [['Access-Control-Allow-Origin', '*'], ['Cache-Control', 'no-cache']], defaultType: 'application/octet-stream' }),
  ]);

  let r = await fetch(`${base}/live.m3u8`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'application/vnd.apple.mpegurl');
  assert.equal(await r.text(), '#EXTM3U\n');
  assert.equal(r.headers.get('content-length'), '8');
  assert.equal(r.headers.get('x-root'), 'yes');
  assert.ok(r.headers.get('last-modified')?.endsWith('GMT'));

  r = await fetch(`${base}/seg0.ts`);
  assert.equal(r.headers.get('content-type'), 'video/mp2t');
  assert.equal((await r.arrayBuffer()).byteLength, 188 * 4);
  r = await fetch(`${base}/thing.foo`);
  assert.equal(r.headers.get('content-type'), 'application/x-foo', 'the location types first');
  assert.equal(await r.text(), 'custom');
  r = await fetch(`${base}/noext`);
  assert.equal(r.headers.get('content-type'), 'text/plain', 'default_type');
  await r.text();
  r = await fetch(`${base}/sub/a%20b.txt`);
  assert.equal(await r.text(), 'spaced');

  // alias: the location prefix replaced by the directory; its own headers (a location has its own add_header)
  r = await fetch(`${base}/media/live.m3u8`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.equal(r.headers.get('cache-control'), 'no-cache');
  assert.equal(r.headers.get('x-root'), null);
  await r.text();
  r = await fetch(`${base}/media/noext`);
  assert.equal(r.headers.get('content-type'), 'application/octet-stream');
  await r.text();

  // HEAD: headers, no body
  r = await fetch(`${base}/data.bin`, { method: 'HEAD' });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-length'), '10');
  assert.equal(await r.text(), '');

  // errors: no add_header (nginx adds them to 2xx/3xx only)
  r = await fetch(`${base}/media/missing.ts`);
  assert.equal(r.status, 404);
  assert.equal(r.headers.get('access-control-allow-origin'), null);
  await r.text();
  r = await fetch(`${base}/sub`);
  assert.equal(r.status, 403, 'directory without trailing slash');
  await r.text();
  r = await fetch(`${base}/sub/`);
  assert.equal(r.status, 403, 'no autoindex');
  await r.text();
  r = await fetch(`${base}/withindex/`);
  assert.equal(r.status, 200);
  assert.equal(await r.text(), 'inner index');
  r = await fetch(`${base}/`);
  assert.equal(r.headers.get('content-type'), 'text/html');
  assert.equal(await r.text(), '<h1>home</h1>');
  r = await fetch(`${base}/data.bin`, { method: 'POST', body: 'x' });
  assert.equal(r.status, 405);
  assert.equal(r.headers.get('allow'), 'GET, HEAD');
  await r.text();

  // a symlink inside the root to a file inside the root is fine
  r = await fetch(`${base}/inside-link.bin`);
  assert.equal(await r.text(), '0123456789');

  // ranges
  r = await fetch(`${base}/data.bin`, { headers: { Range: 'bytes=2-5' } });
  assert.equal(r.status, 206);
  assert.equal(r.headers.get('content-range'), 'bytes 2-5/10');
  assert.equal(r.headers.get('content-length'), '4');
  assert.equal(r.headers.get('x-root'), 'yes');
  assert.equal(await r.text(), '2345');
  r = await fetch(`${base}/data.bin`, { headers: { Range: 'bytes=-3' } });
  assert.equal(await r.text(), '789');
  r = await fetch(`${base}/data.bin`, { headers: { Range: 'bytes=10-' } });
  assert.equal(r.status, 416);
  assert.equal(r.headers.get('content-range'), 'bytes */10');
  await r.text();
  r = await fetch(`${base}/data.bin`, { headers: { Range: 'bytes=0-1,3-4' } });
  assert.equal(r.status, 200);
  assert.equal(await r.text(), '0123456789');
});

test('traversal: nothing outside the root or alias is ever served', async (t) => {
  const { www } = await tree(t);
  const base = await start(t, [
    loc({ path: '/', root: www }),
    // the classic nginx alias pitfall: a prefix without '/', an alias with one
    loc({ path: '/files', alias: `${www}/` }),
    loc({ path: '/hls/', alias: path.join(www, 'sub') + '/' }),
  ]);
  const attempts = [
    '/../secret.txt',
    '/../../secret.txt',
    '/sub/../../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/%2e%2e%2fsecret.txt',
    '/sub%2f..%2f..%2fsecret.txt',
    '/..%5csecret.txt',
    '/%5c..%5csecret.txt',
    '/secret.txt',
    '//secret.txt',
    `/${path.join(www, '..', 'secret.txt')}`,
    `${encodeURIComponent(path.join(www, '..', 'secret.txt'))}`,
    '/%252e%252e/secret.txt',
    '/%c0%ae%c0%ae/secret.txt',
    '/secret.txt%00.html',
    '/link.txt',
    '/updir/secret.txt',
    '/updir/www/../secret.txt',
    '/files../secret.txt',
    '/files%2e%2e/secret.txt',
    '/files/../secret.txt',
    '/files/../../secret.txt',
    '/hls/../../secret.txt',
    '/hls/%2e%2e/%2e%2e/secret.txt',
    '/hls/../data.bin/../../secret.txt',
    'http://localhost/../secret.txt',
  ];
  for (const a of attempts) {
    const r = await rawGet(base, a);
    assert.ok([400, 403, 404].includes(r.status), `${a} → ${r.status}`);
    assert.ok(!r.body.includes(SECRET), `${a} leaked the secret`);
  }
  // the same requests through fetch (which normalizes dot segments itself)
  for (const a of ['/../secret.txt', '/%2e%2e/secret.txt', '/files../secret.txt', '/updir/secret.txt']) {
    const r = await fetch(base + a);
    assert.ok(!(await r.text()).includes(SECRET), a);
  }
  // and the legitimate neighbours still work
  assert.equal((await rawGet(base, '/files/data.bin')).body, '0123456789');
  assert.equal((await rawGet(base, '/hls/a%20b.txt')).body, 'spaced');
  assert.equal((await rawGet(base, '/sub/../data.bin')).body, '0123456789');
});

test('a location without root, alias, stat or control answers 404; no location matches: 404', async (t) => {
  const base = await start(t, [loc({ path: '/only' })]);
  assert.equal((await fetch(`${base}/only/x`)).status, 404);
  assert.equal((await fetch(`${base}/elsewhere`)).status, 404);
});
