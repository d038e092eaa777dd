import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ModuleDeps, PlayContext, PublishContext, SessionInfo } from '../../src/app/chain.js';
import { encodeRedirectValue, execModule, expandExecArg, parseKillSignal, redirectFile, startExecStatic, type ExecModule } from '../../src/app/exec.js';
import { defaultConfig } from '../../src/config/default.js';
import { parseConfigText } from '../../src/config/load.js';
import type { ApplicationConfig, ExecCommand, ExecSettings } from '../../src/config/types.js';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { memoryLogger, silentLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveStream } from '../../src/live/stream.js';
import { RtmpServer } from '../../src/server.js';
import { ffmpegPath, publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { sleep, until } from '../helpers/server.js';
import { playCounting } from '../helpers/synthetic.js';

// ------------------------------------------------------------------ helpers

/**
 * The test child: `node child.cjs OUT MODE MS ARGS...` appends {pid, argv} to
 * OUT, then by MODE: `sleep` forever, `exit` after MS, `stubborn` (ignores
 * SIGTERM), `stdout` (prints its args, then sleeps), `noisy` (1 MiB to stderr
 * first: blocks unless the parent drains it).
 */
const CHILD_SCRIPT = `
const fs = require('fs');
const [out, mode, ms, ...rest] = process.argv.slice(2);
if (mode === 'noisy') process.stderr.write('x'.repeat(1 << 20) + String.fromCharCode(10));
if (mode === 'stdout') process.stdout.write(rest.join(' ') + String.fromCharCode(10));
if (mode === 'stubborn') process.on('SIGTERM', () => {});
fs.appendFileSync(out, JSON.stringify({ pid: process.pid, argv: rest }) + String.fromCharCode(10));
if (mode === 'exit') setTimeout(() => process.exit(0), Number(ms));
else setInterval(() => {}, 1000);
`;

interface Fixture {
  readonly dir: string;
  readonly script: string;
  /** a fresh record file path */
  file(name: string): string;
}

function fixture(t: TestContext): Fixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'exec-test-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'child.cjs');
  writeFileSync(script, CHILD_SCRIPT);
  return { dir, script, file: (name) => path.join(dir, name) };
}

interface Rec {
  readonly pid: number;
  readonly argv: string[];
}

function records(file: string): Rec[] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Rec);
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** argv of the test child: node child.cjs OUT MODE MS ...args */
function child(fx: Fixture, out: string, mode: string, ms: number, ...args: string[]): string[] {
  return [process.execPath, fx.script, out, mode, String(ms), ...args];
}

function appConfig(commands: ExecCommand[], exec: Partial<ExecSettings> = {}, name = 'src'): ApplicationConfig {
  const base = defaultConfig(0).rtmp[0]!.applications[0]!;
  return {
    ...base,
    name,
    exec: { commands, killSignal: 'SIGKILL', respawn: true, respawnTimeout: 5000, options: false, ...exec },
  };
}

function session(id: string, over: Partial<SessionInfo> = {}): SessionInfo {
  return {
    id,
    protocol: 'rtmp',
    remoteAddress: '::ffff:127.0.0.1',
    app: 'src',
    query: '',
    tcUrl: 'rtmp://127.0.0.1:1935/src',
    flashVer: 'FMLE/3.0',
    swfUrl: '',
    pageUrl: '',
    log: silentLogger(),
    ...over,
  };
}

function publishCtx(s: SessionInfo, name: string, query = ''): PublishContext {
  return { session: s, name, query, type: 'live' };
}

function playCtx(s: SessionInfo, name: string): PlayContext {
  return { session: s, name, query: '', start: -2, duration: -1 };
}

interface Built {
  readonly mod: ExecModule;
  readonly logs: MemoryLogEntry[];
  readonly hub: LiveHub;
  /** a session logging to `logs` (the module logs a stream's children there) */
  session(id: string, over?: Partial<SessionInfo>): SessionInfo;
}

function build(t: TestContext, app: ApplicationConfig): Built {
  const logs: MemoryLogEntry[] = [];
  const hub = new LiveHub();
  const deps: ModuleDeps = { hub, logger: memoryLogger(logs) };
  const mod = execModule(app, deps);
  assert.ok(mod !== undefined, 'an exec module');
  t.after(() => mod.close?.());
  return { mod, logs, hub, session: (id, over = {}) => session(id, { log: memoryLogger(logs, { conn: id }), ...over }) };
}

async function waitRecords(file: string, n: number, timeoutMs = 5000): Promise<Rec[]> {
  const ok = await until(() => records(file).length >= n, timeoutMs);
  assert.ok(ok, `expected ${n} start(s) recorded in ${path.basename(file)}, got ${records(file).length}`);
  return records(file);
}

async function waitGone(pids: readonly number[], timeoutMs = 5000): Promise<void> {
  const ok = await until(() => pids.every((p) => !alive(p)), timeoutMs);
  assert.ok(ok, `processes still alive: ${pids.filter(alive).join(', ')}`);
}

// --------------------------------------------------------------- unit tests

test('variables: $var and ${var} expand, unknown ones stay, backslash escapes', () => {
  const vars = { name: 'cam1', app: 'src', args: 'a=1&b=2' };
  assert.equal(expandExecArg('rtmp://h/$app/$name', vars), 'rtmp://h/src/cam1');
  assert.equal(expandExecArg('${name}_hd', vars), 'cam1_hd');
  assert.equal(expandExecArg('$name_hd', vars), 'cam1_hd', 'names are letters only: "_" ends one');
  assert.equal(expandExecArg('$foo and ${bar}', vars), '$foo and ${bar}');
  assert.equal(expandExecArg('\\$name', vars), '$name');
  assert.equal(expandExecArg('$1 costs $', vars), '$1 costs $');
  assert.equal(expandExecArg('${name', vars), '${name');
  assert.equal(expandExecArg('?$args', vars), '?a=1&b=2');
  assert.equal(expandExecArg('$constructor', vars), '$constructor', 'no prototype lookups');
});

test('redirect paths: client values are encoded and must stay in the configured directory (redirectFile)', () => {
  assert.equal(encodeRedirectValue('cam-1_a.b~c@d+e=f,g:h'), 'cam-1_a.b~c@d+e=f,g:h');
  assert.equal(encodeRedirectValue('.'), '%2E');
  assert.equal(encodeRedirectValue('..'), '%2E%2E');
  assert.equal(encodeRedirectValue('...'), '%2E%2E%2E');
  assert.equal(encodeRedirectValue('é'), '%C3%A9');
  assert.deepEqual(redirectFile('/var/log/x/$name.log', { name: 'cam' }), { file: '/var/log/x/cam.log' });
  assert.deepEqual(redirectFile('/var/log/x/$name', { name: '..' }), { file: '/var/log/x/%2E%2E' });
  // each value is encoded on its own: two dots from two variables stay encoded
  assert.deepEqual(redirectFile('/var/log/x/$name$args', { name: '.', args: '.' }), { file: '/var/log/x/%2E%2E' });
  assert.deepEqual(redirectFile('/var/log/x/$name/$args', { name: 'a', args: '../../..' }), { file: '/var/log/x/a/..%2F..%2F..' });
  // an empty value where a whole component was expected: the path is the directory itself
  assert.deepEqual(redirectFile('/var/log/x/$args', { args: '' }), { refused: 'the path leaves /var/log/x' });
  // server-made record variables are not encoded and do not set the directory
  assert.deepEqual(redirectFile('$dirname/$name.txt', { dirname: '/rec/dir', name: 'a/b' }), { file: '/rec/dir/a%2Fb.txt' });
  // no client variable: the configured path as it is
  assert.deepEqual(redirectFile('/tmp/../x', {}), { file: '/x' });
});

test('exec_kill_signal names and numbers', () => {
  assert.equal(parseKillSignal('kill'), 'SIGKILL');
  assert.equal(parseKillSignal('term'), 'SIGTERM');
  assert.equal(parseKillSignal('TERM'), 'SIGTERM');
  assert.equal(parseKillSignal('SIGTERM'), 'SIGTERM');
  assert.equal(parseKillSignal('usr1'), 'SIGUSR1');
  assert.equal(parseKillSignal('hup'), 'SIGHUP');
  assert.equal(parseKillSignal('15'), 'SIGTERM');
  assert.equal(parseKillSignal('9'), 'SIGKILL');
  assert.throws(() => parseKillSignal('bogus'), (e) => isServerError(e, ErrorCode.ConfigBadValue));
  assert.throws(() => parseKillSignal('999'), (e) => isServerError(e, ErrorCode.ConfigBadValue));
});

test('no exec command: no module; a bad kill signal or an empty command fails the build', () => {
  const deps: ModuleDeps = { hub: new LiveHub(), logger: silentLogger() };
  assert.equal(execModule(appConfig([]), deps), undefined);
  assert.throws(() => execModule(appConfig([{ kind: 'exec', argv: ['true'] }], { killSignal: 'nope' }), deps), (e) => isServerError(e, ErrorCode.ConfigBadValue));
  assert.throws(() => execModule(appConfig([{ kind: 'exec', argv: [] }]), deps), (e) => isServerError(e, ErrorCode.ConfigBadValue));
});

// ---------------------------------------------------------- child processes

test('exec: started on published with variables, killed on publishDone; exec_publish runs once and is not killed', async (t) => {
  const fx = fixture(t);
  const pushOut = fx.file('push');
  const pubOut = fx.file('publish');
  const doneOut = fx.file('publish_done');
  const { mod, logs, session: sess } = build(
    t,
    appConfig([
      { kind: 'exec', argv: child(fx, pushOut, 'sleep', 0, '$name', '${app}', '$addr', '$args', '$flashver', '$tcurl', '$swfurl|$pageurl', '$foo', 'rtmp://x/$app/${name}_hd') },
      { kind: 'exec_publish', argv: child(fx, pubOut, 'sleep', 0, 'publish', '$name') },
      { kind: 'exec_publish_done', argv: child(fx, doneOut, 'exit', 0, 'done', '$name') },
    ]),
  );
  const s = sess('c1', { swfUrl: 'http://swf', pageUrl: 'http://page' });
  const ctx = publishCtx(s, 'cam1', 'key=abc');
  mod.published?.(ctx, new LiveStream('src', 'cam1'));

  const [push] = await waitRecords(pushOut, 1);
  assert.deepEqual(push!.argv, ['cam1', 'src', '127.0.0.1', 'key=abc', 'FMLE/3.0', 'rtmp://127.0.0.1:1935/src', 'http://swf|http://page', '$foo', 'rtmp://x/src/cam1_hd']);
  const [pub] = await waitRecords(pubOut, 1);
  assert.deepEqual(pub!.argv, ['publish', 'cam1']);
  assert.ok(alive(push!.pid) && alive(pub!.pid));
  assert.deepEqual(new Set(mod.pids()), new Set([push!.pid, pub!.pid]));
  const started = logs.find((l) => l.msg === 'exec: child started' && l.fields['pid'] === push!.pid);
  assert.ok(started !== undefined, 'a start log line with the pid');
  assert.equal(started.fields['kind'], 'exec');

  mod.publishDone?.(ctx);
  await waitGone([push!.pid]);
  const [done] = await waitRecords(doneOut, 1);
  assert.deepEqual(done!.argv, ['done', 'cam1']);
  assert.ok(alive(pub!.pid), 'exec_publish is not managed: the stream end does not kill it');
  await sleep(300);
  assert.equal(records(pushOut).length, 1, 'a killed exec is not respawned');
  assert.equal(records(pubOut).length, 1, 'exec_publish ran once');
  assert.ok(logs.some((l) => l.msg === 'exec: killing child' && l.fields['pid'] === push!.pid && l.fields['signal'] === 'SIGKILL'));
  assert.ok(logs.some((l) => l.msg === 'exec: child exited' && l.fields['pid'] === push!.pid && l.fields['signal'] === 'SIGKILL'));

  await mod.close?.();
  assert.ok(!alive(pub!.pid), 'close() killed the exec_publish child');
});

test('exec: a child that exits on its own is respawned after respawn_timeout while the stream is published', async (t) => {
  const fx = fixture(t);
  const out = fx.file('push');
  const { mod, logs, session: sess } = build(t, appConfig([{ kind: 'exec_push', argv: child(fx, out, 'exit', 150, '$name') }], { respawnTimeout: 300 }));
  const ctx = publishCtx(sess('c1'), 'cam1');
  mod.published?.(ctx, new LiveStream('src', 'cam1'));
  const first = await waitRecords(out, 1);
  const t0 = Date.now();
  const recs = await waitRecords(out, 3, 8000);
  assert.ok(Date.now() - t0 >= 2 * 300, 'respawns wait respawn_timeout');
  assert.equal(new Set(recs.map((r) => r.pid)).size, recs.length, 'each respawn is a new process');
  assert.equal(first[0]!.pid, recs[0]!.pid);
  assert.ok(recs.every((r) => r.argv[0] === 'cam1'));
  assert.ok(logs.some((l) => l.msg === 'exec: respawning child' && l.fields['delay'] === 300));

  mod.publishDone?.(ctx);
  await sleep(100);
  const n = records(out).length;
  await sleep(800);
  assert.equal(records(out).length, n, 'no respawn after the stream ended');
  assert.deepEqual(mod.pids(), []);
});

test('respawn off: a child that exits stays gone', async (t) => {
  const fx = fixture(t);
  const out = fx.file('push');
  const { mod, session: sess } = build(t, appConfig([{ kind: 'exec', argv: child(fx, out, 'exit', 50) }], { respawn: false, respawnTimeout: 100 }));
  mod.published?.(publishCtx(sess('c1'), 'cam1'), new LiveStream('src', 'cam1'));
  await waitRecords(out, 1);
  await sleep(700);
  assert.equal(records(out).length, 1);
});

test('close(): every child dies, a SIGTERM-proof one by SIGKILL after the grace; nothing starts afterwards', async (t) => {
  const fx = fixture(t);
  const pushOut = fx.file('push');
  const playOut = fx.file('play');
  const { mod, logs, session: sess } = build(
    t,
    appConfig(
      [
        { kind: 'exec', argv: child(fx, pushOut, 'stubborn', 0) },
        { kind: 'exec_play', argv: child(fx, playOut, 'sleep', 0, '$name') },
      ],
      { killSignal: 'term' },
    ),
  );
  mod.published?.(publishCtx(sess('c1'), 'cam1'), new LiveStream('src', 'cam1'));
  await mod.play?.(playCtx(sess('c2'), 'cam1'), () => Promise.resolve());
  const [push] = await waitRecords(pushOut, 1);
  const [play] = await waitRecords(playOut, 1);
  assert.deepEqual(play!.argv, ['cam1']);
  const t0 = Date.now();
  await mod.close?.();
  const took = Date.now() - t0;
  assert.ok(!alive(push!.pid) && !alive(play!.pid), 'close() resolves once the children are gone');
  assert.ok(took >= 1500, `the stubborn child got the grace period (${took} ms)`);
  assert.ok(took < 5000, `close() is bounded (${took} ms)`);
  assert.ok(logs.some((l) => l.fields['pid'] === push!.pid && l.fields['signal'] === 'SIGKILL' && l.msg === 'exec: killing child'));

  mod.published?.(publishCtx(sess('c3'), 'cam2'), new LiveStream('src', 'cam2'));
  await sleep(300);
  assert.equal(records(pushOut).length, 1, 'a closed module starts nothing');
});

test('exec_static: started when the module is built, respawned, killed by close()', async (t) => {
  const fx = fixture(t);
  const out = fx.file('static');
  const { mod } = build(t, appConfig([{ kind: 'exec_static', argv: child(fx, out, 'exit', 200, '$name') }], { respawn: false, respawnTimeout: 100 }));
  const recs = await waitRecords(out, 2, 5000);
  assert.deepEqual(recs[0]!.argv, ['$name'], 'exec_static has no variables');
  await mod.close?.();
  const n = records(out).length;
  assert.ok(recs.every((r) => !alive(r.pid)));
  await sleep(500);
  assert.equal(records(out).length, n);

  // the global list (ServerConfig.execStatic)
  const out2 = fx.file('global');
  const runner = startExecStatic({ commands: [{ kind: 'exec_static', argv: child(fx, out2, 'sleep', 0) }], killSignal: 'SIGTERM', respawn: true, respawnTimeout: 5000, options: false }, silentLogger());
  assert.ok(runner !== undefined);
  t.after(() => runner.close());
  const [g] = await waitRecords(out2, 1);
  assert.deepEqual(runner.pids(), [g!.pid]);
  await runner.close();
  assert.ok(!alive(g!.pid));
  assert.equal(startExecStatic(undefined, silentLogger()), undefined);
});

test('exec_pull: one child per stream name while it has players and no publisher; killed when the last player leaves', async (t) => {
  const fx = fixture(t);
  const out = fx.file('pull');
  const playDoneOut = fx.file('play_done');
  const { mod, hub, session: sess } = build(
    t,
    appConfig([
      { kind: 'exec_pull', argv: child(fx, out, 'sleep', 0, '$name', '$app', '$addr') },
      { kind: 'exec_play_done', argv: child(fx, playDoneOut, 'exit', 0, '$name') },
    ]),
  );
  const ok = (): Promise<void> => Promise.resolve();
  const a = playCtx(sess('p1'), 'cam1');
  const b = playCtx(sess('p2'), 'cam1');
  await mod.play?.(a, ok);
  await mod.play?.(b, ok);
  const [pull] = await waitRecords(out, 1);
  assert.deepEqual(pull!.argv, ['cam1', 'src', '$addr'], 'exec_pull gets name and app only');
  await sleep(200);
  assert.equal(records(out).length, 1, 'one child for both players');

  mod.playDone?.(a);
  await waitRecords(playDoneOut, 1);
  assert.ok(alive(pull!.pid), 'still a player');
  mod.disconnect?.(b.session); // the second player's connection ends without playDone
  await waitGone([pull!.pid]);
  await waitRecords(playDoneOut, 2);

  // a refused play (the rest of the chain throws) starts nothing
  await assert.rejects(mod.play!(playCtx(sess('p3'), 'cam2'), () => Promise.reject(new Error('refused'))));
  // a stream already published needs no pull
  hub.publish('src', 'live1', { id: 'x', remote: 'x', stop: () => undefined });
  await mod.play?.(playCtx(sess('p4'), 'live1'), ok);
  await sleep(300);
  assert.equal(records(out).length, 1);
});

test('exec_options: name= filters select the streams a command runs for', async (t) => {
  const fx = fixture(t);
  const out = fx.file('push');
  const { mod, session: sess } = build(t, appConfig([{ kind: 'exec', argv: child(fx, out, 'exit', 0, '$name', 'name=wanted') }], { options: true, respawn: false }));
  mod.published?.(publishCtx(sess('c1'), 'other'), new LiveStream('src', 'other'));
  mod.published?.(publishCtx(sess('c2'), 'wanted'), new LiveStream('src', 'wanted'));
  const recs = await waitRecords(out, 1);
  await sleep(300);
  assert.equal(records(out).length, 1);
  assert.deepEqual(recs[0]!.argv, ['wanted'], 'the name= option is not passed to the program');
});

test('redirects: >file with variables and 2>&1; a client value is never a redirect', async (t) => {
  const fx = fixture(t);
  const out = fx.file('push');
  const logFile = path.join(fx.dir, 'out-cam1.log');
  const { mod, session: sess } = build(t, appConfig([{ kind: 'exec', argv: [...child(fx, out, 'stdout', 0, 'hello', '$args'), `>${fx.dir}/out-$name.log`, '2>&1'] }], { respawn: false }));
  mod.published?.(publishCtx(sess('c1'), 'cam1', `>${fx.dir}/evil`), new LiveStream('src', 'cam1'));
  const [rec] = await waitRecords(out, 1);
  assert.deepEqual(rec!.argv, ['hello', `>${fx.dir}/evil`]);
  assert.ok(await until(() => existsSync(logFile) && readFileSync(logFile, 'utf8').includes('hello')), 'stdout went to the expanded file');
  assert.equal(existsSync(path.join(fx.dir, 'evil')), false);
});

test("a child's stderr is drained (1 MiB does not block it) and logged at debug", async (t) => {
  const fx = fixture(t);
  const out = fx.file('push');
  const { mod, logs, session: sess } = build(t, appConfig([{ kind: 'exec', argv: child(fx, out, 'noisy', 0) }]));
  mod.published?.(publishCtx(sess('c1'), 'cam1'), new LiveStream('src', 'cam1'));
  await waitRecords(out, 1, 8000);
  assert.ok(logs.some((l) => l.level === 'debug' && l.msg === 'exec: child output'));
});

test('a program that cannot be started is logged and retried after respawn_timeout', async (t) => {
  const { mod, logs, session: sess } = build(t, appConfig([{ kind: 'exec', argv: ['/nonexistent/program-xyz', '$name'] }], { respawnTimeout: 100 }));
  mod.published?.(publishCtx(sess('c1'), 'cam1'), new LiveStream('src', 'cam1'));
  assert.ok(await until(() => logs.filter((l) => l.msg === 'exec: cannot start child').length >= 2, 3000));
  assert.deepEqual(mod.pids(), []);
});

test('exec_record_done: the recorder entry point runs it with path variables', async (t) => {
  const fx = fixture(t);
  const out = fx.file('rec');
  const { mod, session: sess } = build(t, appConfig([{ kind: 'exec_record_done', argv: child(fx, out, 'exit', 0, '$path', '$filename', '$basename', '$dirname', '$recorder', '$name') }]));
  mod.recordDone({ session: sess('c1'), name: 'cam1', query: '', recorder: 'all', path: '/tmp/rec/cam1-1.flv' });
  const [rec] = await waitRecords(out, 1);
  assert.deepEqual(rec!.argv, ['/tmp/rec/cam1-1.flv', 'cam1-1.flv', 'cam1-1', '/tmp/rec', 'all', 'cam1']);
});

test('children are SIGKILLed when the server process exits without closing the module', async (t) => {
  const fx = fixture(t);
  const out = fx.file('orphan');
  const execTs = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../src/app/exec.ts');
  const code = `
    import { startExecStatic } from ${JSON.stringify(execTs)};
    import { existsSync } from 'node:fs';
    const argv = ${JSON.stringify(child(fx, out, 'sleep', 0))};
    startExecStatic({ commands: [{ kind: 'exec_static', argv }], killSignal: 'SIGKILL', respawn: true, respawnTimeout: 5000, options: false }, {
      trace() {}, debug() {}, info() {}, warn() {}, error() {}, fatal() {}, child() { return this; },
    });
    const timer = setInterval(() => { if (existsSync(${JSON.stringify(out)})) { clearInterval(timer); process.exit(0); } }, 20);
  `;
  const host = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  host.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  t.after(() => host.kill('SIGKILL'));
  const exitCode = await new Promise<number | null>((r) => host.on('exit', (c) => r(c)));
  assert.equal(exitCode, 0, stderr);
  const [rec] = records(out);
  assert.ok(rec !== undefined);
  t.after(() => {
    if (alive(rec.pid)) process.kill(rec.pid, 'SIGKILL');
  });
  await waitGone([rec.pid], 3000);
});

// -------------------------------------------------------------- end to end

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      const port = a !== null && typeof a === 'object' ? a.port : 0;
      s.close(() => resolve(port));
    });
  });
}

test('end to end: `exec ffmpeg` relays src/$name to out/$name while published, and dies with the publisher', { timeout: 90_000 }, async (t) => {
  const ffmpeg = await ffmpegPath();
  const port = await freePort();
  const url = `rtmp://127.0.0.1:${port}`;
  const config = parseConfigText(
    `rtmp {
      server {
        listen 127.0.0.1:${port};
        application src {
          live on;
          exec ${JSON.stringify(ffmpeg)} -hide_banner -nostdin -loglevel warning -i ${url}/src/$name -c copy -f flv ${url}/out/$name;
        }
        application out {
          live on;
        }
      }
    }`,
    'exec-e2e.conf',
  );
  const logs: MemoryLogEntry[] = [];
  const mods: ExecModule[] = [];
  const server = new RtmpServer(config, {
    logger: memoryLogger(logs),
    warmup: false,
    modules: (app, deps) => {
      const m = execModule(app, deps);
      if (m === undefined) return [];
      mods.push(m);
      return [m];
    },
  });
  await server.start();
  t.after(() => server.stop(1000));
  assert.equal(mods.length, 1, 'only src has exec commands');

  const publisher = await runFfmpeg(publishArgs(`${url}/src/test`, 60));
  t.after(() => publisher.kill());
  assert.ok(await until(() => mods[0]!.pids().length === 1, 15_000), 'the exec child started when src/test was published');
  const execPid = mods[0]!.pids()[0]!;
  const start = logs.find((l) => l.msg === 'exec: child started');
  assert.deepEqual((start?.fields['cmd'] as string[]).slice(-1), [`${url}/out/test`], '$name expanded in the command line');

  const player = await playCounting(`${url}/out`, 'test');
  t.after(() => player.client.close());
  assert.ok(await until(() => player.video >= 25, 30_000), `the player of out/test got ${player.video} video frames`);
  assert.ok(player.keyframes >= 1);
  assert.ok(alive(execPid));

  publisher.kill();
  await publisher.done;
  await waitGone([execPid], 5000);
  // the OS may reap the child a moment before Node delivers its 'exit' event
  assert.ok(await until(() => mods[0]!.pids().length === 0, 2000), `children left: ${mods[0]!.pids().join(', ')}`);
  assert.ok(logs.some((l) => l.msg === 'exec: killing child' && l.fields['pid'] === execPid));
});
