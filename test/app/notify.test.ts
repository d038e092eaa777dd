import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { AppChain, type AppModule, type PlayContext, type PublishContext, type SessionInfo } from '../../src/app/chain.js';
import { buildModules } from '../../src/app/modules.js';
import { notifyModule, type NotifyDeps } from '../../src/app/notify.js';
import type { AccessRule, ApplicationConfig, NotifySettings } from '../../src/config/types.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { memoryLogger, silentLogger, type Logger } from '../../src/core/log.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveStream } from '../../src/live/stream.js';

interface Recorded {
  readonly method: string;
  readonly path: string;
  readonly contentType: string | undefined;
  readonly body: string;
  /** the arguments, from the body (POST) or the query string (GET) */
  readonly params: URLSearchParams;
}

type Responder = (r: Recorded, res: http.ServerResponse) => void;

/** The usual webhook backend: a stream key check and a rename. */
const keyCheck: Responder = (r, res) => {
  const key = r.params.get('key');
  if (r.params.get('name') === 'old') {
    res.writeHead(302, { location: 'new' }).end();
  } else if (r.params.get('name') === 'relay') {
    res.writeHead(302, { location: 'rtmp://other.example:1936/app/renamed' }).end();
  } else if (r.params.get('name') === 'withargs') {
    res.writeHead(301, { location: 'other?token=x' }).end();
  } else if (key === 'good' || r.params.get('call')?.endsWith('done') === true) {
    res.writeHead(200).end('ok');
  } else {
    res.writeHead(403).end('forbidden');
  }
};

interface HookServer {
  readonly base: string;
  readonly requests: Recorded[];
  respond: Responder;
  waitFor(n: number, timeoutMs?: number): Promise<void>;
}

async function hookServer(t: TestContext, respond: Responder = keyCheck): Promise<HookServer> {
  const requests: Recorded[] = [];
  const hs: HookServer = {
    base: '',
    requests,
    respond,
    async waitFor(n: number, timeoutMs = 3000): Promise<void> {
      const end = Date.now() + timeoutMs;
      while (requests.length < n) {
        if (Date.now() > end) assert.fail(`expected ${n} webhook calls, got ${requests.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
  };
  const server = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (d: string) => (body += d));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://x');
      const rec: Recorded = {
        method: req.method ?? '',
        path: u.pathname,
        contentType: req.headers['content-type'],
        body,
        params: req.method === 'POST' ? new URLSearchParams(body) : u.searchParams,
      };
      requests.push(rec);
      hs.respond(rec, res);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    server.closeAllConnections();
    return new Promise<void>((r) => server.close(() => r()));
  });
  const { port } = server.address() as AddressInfo;
  return Object.assign(hs, { base: `http://127.0.0.1:${port}` });
}

/** A port nothing listens on. */
async function closedPort(): Promise<number> {
  const s = http.createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address() as AddressInfo;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

function settings(over: Partial<NotifySettings>): NotifySettings {
  return {
    onConnect: undefined,
    onPlay: undefined,
    onPublish: undefined,
    onDone: undefined,
    onPlayDone: undefined,
    onPublishDone: undefined,
    onRecordStarted: undefined,
    onRecordDone: undefined,
    onUpdate: undefined,
    updateTimeout: 30_000,
    updateStrict: false,
    relayRedirect: false,
    method: 'POST',
    ...over,
  };
}

function appConfig(notify: Partial<NotifySettings>, access: AccessRule[] = []): ApplicationConfig {
  return {
    name: 'live',
    live: {
      live: true,
      meta: 'on',
      interleave: false,
      waitKey: false,
      waitVideo: false,
      publishNotify: false,
      playRestart: false,
      idleStreams: true,
      dropIdlePublisher: 0,
      sync: 300,
      gopCache: true,
      flushWindow: 0,
    },
    access,
    notify: settings(notify),
    exec: { commands: [], killSignal: 'SIGKILL', respawn: true, respawnTimeout: 5000, options: false },
    relay: { push: [], pull: [], pushReconnect: 3000, sessionRelay: false },
    directives: {},
  };
}

function session(over: Partial<SessionInfo> = {}, log: Logger = silentLogger()): SessionInfo {
  return {
    id: 'c7',
    protocol: 'rtmp',
    remoteAddress: '::ffff:127.0.0.1',
    app: 'live',
    query: '',
    tcUrl: 'rtmp://127.0.0.1/live',
    flashVer: 'FMLE/3.0 (compatible; FMSc/1.0)',
    swfUrl: '',
    pageUrl: '',
    log,
    ...over,
  };
}

function publishCtx(name: string, query: string, s: SessionInfo = session()): PublishContext {
  return { session: s, name, query, type: 'live' };
}

function playCtx(name: string, query: string, s: SessionInfo = session()): PlayContext {
  return { session: s, name, query, start: -2, duration: -1 };
}

function moduleOf(over: Partial<NotifySettings>, deps: NotifyDeps = { timeout: 2000 }): AppModule {
  const m = notifyModule(settings(over), deps);
  assert.ok(m !== undefined);
  return m;
}

/** runs a publish step; true when it went on to next() */
async function runPublish(m: AppModule, ctx: PublishContext): Promise<boolean> {
  let went = false;
  await m.publish!(ctx, async () => {
    went = true;
  });
  return went;
}

const refused = (e: unknown): boolean => isServerError(e, ErrorCode.Refused);

test('no webhook configured: no module; a record hook alone makes one (the recorder raises it through the chain)', () => {
  assert.equal(notifyModule(settings({})), undefined);
  assert.ok(notifyModule(settings({ onRecordDone: 'http://127.0.0.1/x' })) !== undefined);
  assert.ok(notifyModule(settings({ onPublishDone: 'http://127.0.0.1/x' })) !== undefined);
});

test('on_publish: POST form with nginx-rtmp arguments and the stream key; 2xx allows', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onPublish: `${hs.base}/publish` });
  const ctx = publishCtx('stream', 'key=good&extra=a%20b');
  assert.equal(await runPublish(m, ctx), true);
  assert.equal(hs.requests.length, 1);
  const r = hs.requests[0]!;
  assert.equal(r.method, 'POST');
  assert.equal(r.path, '/publish');
  assert.equal(r.contentType, 'application/x-www-form-urlencoded');
  const p = r.params;
  assert.equal(p.get('call'), 'publish');
  assert.equal(p.get('name'), 'stream');
  assert.equal(p.get('type'), 'live');
  assert.equal(p.get('app'), 'live');
  assert.equal(p.get('addr'), '127.0.0.1');
  assert.equal(p.get('clientid'), 'c7');
  assert.equal(p.get('tcurl'), 'rtmp://127.0.0.1/live');
  assert.equal(p.get('flashver'), 'FMLE/3.0 (compatible; FMSc/1.0)');
  assert.equal(p.get('swfurl'), '');
  assert.equal(p.get('pageurl'), '');
  assert.equal(p.get('key'), 'good');
  assert.equal(p.get('extra'), 'a b');
  assert.equal(ctx.name, 'stream');
});

test('on_publish: 403 refuses without going on', async (t) => {
  const hs = await hookServer(t);
  const log = memoryLogger();
  const m = moduleOf({ onPublish: `${hs.base}/publish` });
  let went = false;
  await assert.rejects(
    m.publish!(publishCtx('stream', 'key=bad', session({}, log)), async () => {
      went = true;
    }),
    (e: unknown) => refused(e) && /on_publish \(HTTP 403\)/.test((e as Error).message),
  );
  assert.equal(went, false);
  const line = log.entries.find((e) => e.msg === 'notify: on_publish');
  assert.ok(line !== undefined, 'one log line per call');
  assert.equal(line.fields['status'], 403);
  assert.equal(line.fields['url'], `${hs.base}/publish`);
  assert.equal(typeof line.fields['ms'], 'number');
  // no key at all: refused too
  await assert.rejects(runPublish(m, publishCtx('stream', '')), refused);
});

test('a client argument cannot shadow a server argument', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onPublish: `${hs.base}/publish` });
  await runPublish(m, publishCtx('stream', 'key=good&name=evil&call=done&addr=6.6.6.6'));
  const p = hs.requests[0]!.params;
  assert.deepEqual(p.getAll('name'), ['stream']);
  assert.deepEqual(p.getAll('call'), ['publish']);
  assert.deepEqual(p.getAll('addr'), ['127.0.0.1']);
});

test('a client argument cannot shadow an argument of the configured URL, nor sit beside ours under another spelling', async (t) => {
  const hs = await hookServer(t);
  // the same shadowing arguments, whatever the method: exact, PHP array forms, other case
  const hostile = 'key=good&secret=2&secret[]=3&CALL=x&name[a]=y&Addr=6.6.6.6&extra=kept';
  const names = (p: URLSearchParams): string[] => [...p.keys()];
  const get = moduleOf({ onPublish: `${hs.base}/publish?secret=1`, method: 'GET' });
  assert.equal(await runPublish(get, publishCtx('stream', hostile)), true);
  const g = hs.requests[0]!.params;
  assert.deepEqual(g.getAll('secret'), ['1'], 'the configured URL keeps its own argument, once');
  assert.deepEqual(
    names(g).filter((k) => /^(secret|call|name|addr)\b/i.test(k)),
    ['secret', 'addr', 'call', 'name'],
    'no client variant of a server or URL argument is sent',
  );
  assert.equal(g.get('key'), 'good');
  assert.equal(g.get('extra'), 'kept');
  const post = moduleOf({ onPublish: `${hs.base}/publish?secret=1` });
  assert.equal(await runPublish(post, publishCtx('stream', hostile)), true);
  const p = hs.requests[1]!;
  assert.equal(p.method, 'POST');
  assert.doesNotMatch(p.body, /secret/i, 'the body does not carry a second secret beside the URL\'s');
  assert.deepEqual(names(p.params).filter((k) => /^(call|name|addr)\b/i.test(k)), ['addr', 'call', 'name']);
  assert.equal(p.params.get('extra'), 'kept');
});

test('on_publish: a 3xx Location renames the stream', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onPublish: `${hs.base}/publish` });
  const a = publishCtx('old', 'key=good');
  assert.equal(await runPublish(m, a), true);
  assert.equal(a.name, 'new');
  assert.equal(a.query, 'key=good');
  const b = publishCtx('relay', '');
  assert.equal(await runPublish(m, b), true);
  assert.equal(b.name, 'renamed');
  const c = publishCtx('withargs', 'key=1');
  assert.equal(await runPublish(m, c), true);
  assert.equal(c.name, 'other');
  assert.equal(c.query, 'token=x');
});

test('notify_method GET: the arguments go in the query string', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onPublish: `${hs.base}/publish?static=1`, method: 'GET' });
  assert.equal(await runPublish(m, publishCtx('stream', 'key=good')), true);
  const r = hs.requests[0]!;
  assert.equal(r.method, 'GET');
  assert.equal(r.body, '');
  assert.equal(r.params.get('static'), '1');
  assert.equal(r.params.get('call'), 'publish');
  assert.equal(r.params.get('key'), 'good');
});

test('on_play: arguments, refusal and redirect', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onPlay: `${hs.base}/play` });
  const ok = playCtx('stream', 'key=good');
  let went = false;
  await m.play!(ok, async () => {
    went = true;
  });
  assert.equal(went, true);
  const p = hs.requests[0]!.params;
  assert.equal(p.get('call'), 'play');
  assert.equal(p.get('name'), 'stream');
  assert.equal(p.get('start'), '4294967294');
  assert.equal(p.get('duration'), '4294967295');
  assert.equal(p.get('reset'), '0');
  assert.equal(p.get('key'), 'good');
  await assert.rejects(
    m.play!(playCtx('stream', 'key=bad'), async () => {}),
    refused,
  );
  const moved = playCtx('old', '');
  await m.play!(moved, async () => {});
  assert.equal(moved.name, 'new');
});

test('on_connect: the connect query string is checked', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onConnect: `${hs.base}/connect` });
  let went = false;
  await m.connect!({ session: session({ query: 'key=good' }) }, async () => {
    went = true;
  });
  assert.equal(went, true);
  const p = hs.requests[0]!.params;
  assert.equal(p.get('call'), 'connect');
  assert.equal(p.get('app'), 'live');
  assert.equal(p.get('key'), 'good');
  assert.match(p.get('epoch') ?? '', /^\d+$/);
  await assert.rejects(
    m.connect!({ session: session({ query: 'key=bad' }) }, async () => {}),
    refused,
  );
});

test('a webhook that never answers refuses within the timeout', async (t) => {
  const hs = await hookServer(t, () => {
    /* never answers */
  });
  const m = moduleOf({ onPublish: `${hs.base}/hang` }, { timeout: 300 });
  const started = Date.now();
  await assert.rejects(runPublish(m, publishCtx('stream', 'key=good')), (e: unknown) => refused(e) && /no valid answer/.test((e as Error).message));
  const took = Date.now() - started;
  assert.ok(took >= 250, `refused too early: ${took} ms`);
  assert.ok(took < 2000, `refused too late: ${took} ms`);
  assert.equal(hs.requests.length, 1);
});

test('a refused connection refuses quickly', async () => {
  const port = await closedPort();
  const log = memoryLogger();
  const m = moduleOf({ onPublish: `http://127.0.0.1:${port}/publish` }, { timeout: 5000 });
  const started = Date.now();
  await assert.rejects(runPublish(m, publishCtx('stream', 'key=good', session({}, log))), refused);
  assert.ok(Date.now() - started < 2000);
  const line = log.entries.find((e) => e.msg === 'notify: on_publish failed');
  assert.equal(line?.level, 'warn');
  assert.equal(line.fields['status'], undefined);
  assert.match(String(line.fields['err']), /ECONNREFUSED|fetch failed/);
});

test('publish_done, play_done and done fire after the stream ends', async (t) => {
  const hs = await hookServer(t);
  const m = moduleOf({ onPublishDone: `${hs.base}/publish_done`, onPlayDone: `${hs.base}/play_done`, onDone: `${hs.base}/done` });
  const pub = publishCtx('stream', 'key=good');
  assert.equal(await runPublish(m, pub), true);
  assert.equal(hs.requests.length, 0, 'nothing is called at publish');
  m.publishDone!(pub);
  await hs.waitFor(2);
  const byPath = new Map(hs.requests.map((r) => [r.path, r.params]));
  assert.equal(byPath.get('/publish_done')?.get('call'), 'publish_done');
  assert.equal(byPath.get('/publish_done')?.get('name'), 'stream');
  assert.equal(byPath.get('/publish_done')?.get('key'), 'good');
  assert.equal(byPath.get('/done')?.get('call'), 'done');

  const play = playCtx('stream', '');
  await m.play!(play, async () => {});
  m.playDone!(play);
  await hs.waitFor(4);
  const calls = hs.requests.slice(2).map((r) => `${r.path}:${r.params.get('call')}`).sort();
  assert.deepEqual(calls, ['/done:done', '/play_done:play_done']);
});

test('a failing done webhook is only logged', async () => {
  const port = await closedPort();
  const log = memoryLogger();
  const m = moduleOf({ onPublishDone: `http://127.0.0.1:${port}/x` });
  const ctx = publishCtx('stream', '', session({}, log));
  await runPublish(m, ctx);
  m.publishDone!(ctx);
  const end = Date.now() + 3000;
  while (!log.entries.some((e) => e.msg === 'notify: on_publish_done failed') && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.ok(log.entries.some((e) => e.msg === 'notify: on_publish_done failed' && e.level === 'warn'));
});

function liveStream(stops: string[]): LiveStream {
  const stream = new LiveStream('live', 'stream');
  stream.attachPublisher({ id: 'c7', remote: '127.0.0.1:1', stop: (reason) => stops.push(reason) });
  return stream;
}

test('on_update: periodic while publishing, a 403 stops the publisher', async (t) => {
  let answers = 0;
  const hs = await hookServer(t, (_r, res) => {
    answers++;
    res.writeHead(answers <= 2 ? 200 : 403).end();
  });
  const m = moduleOf({ onUpdate: `${hs.base}/update`, updateTimeout: 80 });
  const ctx = publishCtx('stream', 'key=good');
  await runPublish(m, ctx);
  const stops: string[] = [];
  const stream = liveStream(stops);
  m.published!(ctx, stream);
  await hs.waitFor(3);
  const end = Date.now() + 2000;
  while (stops.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.equal(stops.length, 1);
  assert.match(stops[0]!, /on_update \(HTTP 403\)/);
  const p = hs.requests[0]!.params;
  assert.equal(p.get('call'), 'update_publish');
  assert.equal(p.get('name'), 'stream');
  assert.equal(p.get('key'), 'good');
  assert.match(p.get('time') ?? '', /^\d+$/);
  assert.match(p.get('timestamp') ?? '', /^\d+$/);
  // no more updates after the failure
  await new Promise((r) => setTimeout(r, 250));
  assert.equal(hs.requests.length, 3);
  m.publishDone!(ctx);
});

test('on_update: stops after publishDone', async (t) => {
  const hs = await hookServer(t, (_r, res) => res.writeHead(200).end());
  const m = moduleOf({ onUpdate: `${hs.base}/update`, updateTimeout: 50 });
  const ctx = publishCtx('stream', '');
  await runPublish(m, ctx);
  const stops: string[] = [];
  m.published!(ctx, liveStream(stops));
  await hs.waitFor(2);
  m.publishDone!(ctx);
  const n = hs.requests.length;
  await new Promise((r) => setTimeout(r, 250));
  assert.ok(hs.requests.length <= n + 1, 'at most the call in flight');
  assert.deepEqual(stops, []);
});

test('on_update: a failed call stops the publisher only in strict mode', async (t) => {
  // the backend drops the connection: no HTTP answer at all
  const hs = await hookServer(t, (_r, res) => res.socket?.destroy());
  const lax = moduleOf({ onUpdate: `${hs.base}/update`, updateTimeout: 50, updateStrict: false });
  const laxCtx = publishCtx('a', '');
  await runPublish(lax, laxCtx);
  const laxStops: string[] = [];
  lax.published!(laxCtx, liveStream(laxStops));
  await hs.waitFor(3);
  assert.deepEqual(laxStops, [], 'not strict: failures are ignored, updates go on');
  lax.publishDone!(laxCtx);

  const strict = moduleOf({ onUpdate: `${hs.base}/update`, updateTimeout: 50, updateStrict: true });
  const ctx = publishCtx('b', '');
  await runPublish(strict, ctx);
  const stops: string[] = [];
  strict.published!(ctx, liveStream(stops));
  const end = Date.now() + 3000;
  while (stops.length === 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 10));
  assert.equal(stops.length, 1);
  strict.publishDone!(ctx);
});

test('on_update while playing: a refusal stops that player (through ctx.stop), disconnect stops updates', async (t) => {
  const hs = await hookServer(t, (_r, res) => res.writeHead(200).end());
  const log = memoryLogger();
  const m = moduleOf({ onUpdate: `${hs.base}/update`, updateTimeout: 50 });
  const s = session({}, log);
  const stopped: string[] = [];
  const first = playCtx('stream', 'key=good', s);
  await m.play!(first, async () => {
    // what the server does once the chain accepted the play
    first.stop = (reason) => stopped.push(reason);
  });
  await hs.waitFor(2);
  assert.equal(hs.requests[0]!.params.get('call'), 'update_play');
  hs.respond = (_r, res) => res.writeHead(403).end();
  const end = Date.now() + 2000;
  while (!log.entries.some((e) => e.level === 'warn' && e.msg.includes('on_update refused a player')) && Date.now() < end) {
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(log.entries.some((e) => e.level === 'warn' && e.msg.includes('on_update refused a player')));
  assert.deepEqual(stopped, ['on_update refused the player']);

  // a second play on the same session keeps updating until the session disconnects
  hs.respond = (_r, res) => res.writeHead(200).end();
  await m.play!(playCtx('other', '', s), async () => {});
  const before = hs.requests.length;
  await hs.waitFor(before + 1);
  m.disconnect!(s);
  const n = hs.requests.length;
  await new Promise((r) => setTimeout(r, 250));
  assert.ok(hs.requests.length <= n + 1);
});

test('wired through buildModules and AppChain: access before notify', async (t) => {
  const hs = await hookServer(t);
  const app = appConfig({ onPublish: `${hs.base}/publish`, onPublishDone: `${hs.base}/publish_done` }, [
    { action: 'deny', kind: 'publish', address: '10.0.0.0/8' },
  ]);
  const modules = buildModules(app, { hub: new LiveHub(), logger: silentLogger() });
  assert.deepEqual(
    modules.map((m) => m.name),
    ['access', 'notify'],
  );
  const chain = new AppChain(modules);

  // refused by access: the webhook is never called
  await assert.rejects(chain.publish(publishCtx('stream', 'key=good', session({ remoteAddress: '10.1.2.3' }))), (e: unknown) =>
    refused(e) && (e as Error).message === 'publish from 10.1.2.3 denied by access rules',
  );
  assert.equal(hs.requests.length, 0);

  await assert.rejects(chain.publish(publishCtx('stream', 'key=bad')), refused);
  const ok = publishCtx('old', 'key=good');
  await chain.publish(ok);
  assert.equal(ok.name, 'new');
  chain.publishDone(ok);
  await hs.waitFor(3);
  assert.equal(hs.requests[2]!.params.get('call'), 'publish_done');
  assert.equal(hs.requests[2]!.params.get('name'), 'new');

  assert.deepEqual(buildModules(appConfig({}), { hub: new LiveHub(), logger: silentLogger() }), []);
});

test('close() stops the updates and waits for the calls in flight', async (t) => {
  let release: (() => void) | undefined;
  const hs = await hookServer(t, (r, res) => {
    if (r.path === '/publish_done') release = () => res.writeHead(200).end();
    else res.writeHead(200).end();
  });
  const m = moduleOf({ onUpdate: `${hs.base}/update`, updateTimeout: 50, onPublishDone: `${hs.base}/publish_done` });
  const ctx = publishCtx('stream', '');
  await runPublish(m, ctx);
  m.published!(ctx, liveStream([]));
  const other = publishCtx('other', '', session({ id: 'c8' }));
  await runPublish(m, other);
  m.published!(other, liveStream([]));
  await hs.waitFor(2);
  m.publishDone!(ctx);
  await hs.waitFor(3);
  assert.ok(release !== undefined, 'publish_done reached the backend');
  let closed = false;
  const closing = Promise.resolve(m.close!()).then(() => (closed = true));
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(closed, false, 'close waits for the publish_done answer');
  release();
  await closing;
  const n = hs.requests.length;
  await new Promise((r) => setTimeout(r, 200));
  assert.equal(hs.requests.length, n, 'no update after close');
});
