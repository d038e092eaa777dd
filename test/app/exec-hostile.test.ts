/**
 * Issue 13, items 11 and 12 (exec): client-chosen values in exec command
 * lines and redirects, and how many children a client can make the server run.
 * Every test runs real programs (sh, node).
 */
import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { ModuleDeps, PlayContext, PublishContext, SessionInfo } from '../../src/app/chain.js';
import { execModule, type ExecLimits, type ExecModule } from '../../src/app/exec.js';
import { defaultConfig } from '../../src/config/default.js';
import type { ApplicationConfig, ExecCommand, ExecSettings } from '../../src/config/types.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { LiveHub } from '../../src/live/hub.js';
import { LiveStream } from '../../src/live/stream.js';
import { parseConfigText } from '../../src/config/load.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { sleep, startServer, until } from '../helpers/server.js';

/** `node child.cjs OUT ARGS...`: appends its argv to OUT, then sleeps until killed. */
const CHILD_SCRIPT = `
const fs = require('fs');
const [out, ...rest] = process.argv.slice(2);
fs.appendFileSync(out, JSON.stringify(rest) + String.fromCharCode(10));
setInterval(() => {}, 1000);
`;

interface Fixture {
  readonly dir: string;
  readonly script: string;
}

function fixture(t: TestContext): Fixture {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'exec-hostile-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  const script = path.join(dir, 'child.cjs');
  writeFileSync(script, CHILD_SCRIPT);
  return { dir, script };
}

function starts(file: string): string[][] {
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as string[]);
}

function appConfig(commands: ExecCommand[], exec: Partial<ExecSettings> = {}): ApplicationConfig {
  const base = defaultConfig(0).rtmp[0]!.applications[0]!;
  return { ...base, name: 'src', exec: { commands, killSignal: 'SIGKILL', respawn: true, respawnTimeout: 200, options: false, ...exec } };
}

interface Built {
  readonly mod: ExecModule;
  readonly logs: MemoryLogEntry[];
  session(id: string, over?: Partial<SessionInfo>): SessionInfo;
}

function build(t: TestContext, app: ApplicationConfig, limits?: ExecLimits): Built {
  const logs: MemoryLogEntry[] = [];
  const deps: ModuleDeps = { hub: new LiveHub(), logger: memoryLogger(logs) };
  const mod = execModule(app, deps, limits);
  assert.ok(mod !== undefined);
  t.after(() => mod.close?.());
  return {
    mod,
    logs,
    session: (id, over = {}) => ({
      id,
      protocol: 'rtmp',
      remoteAddress: '::ffff:127.0.0.1',
      app: 'src',
      query: '',
      tcUrl: 'rtmp://127.0.0.1:1935/src',
      flashVer: 'FMLE/3.0',
      swfUrl: '',
      pageUrl: '',
      log: memoryLogger(logs, { conn: id }),
      ...over,
    }),
  };
}

function publishCtx(s: SessionInfo, name: string, query = ''): PublishContext {
  return { session: s, name, query, type: 'live' };
}

function playCtx(s: SessionInfo, name: string): PlayContext {
  return { session: s, name, query: '', start: -2, duration: -1 };
}

/** every file under dir, relative, recursively */
function tree(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' }).sort();
}

// ------------------------------------------------------------ item 11: redirects

test('redirects: a client value cannot leave the directory of the configured path (`cam?../escaped`, .., a/b, a\\b, NUL, long, tcurl)', async (t) => {
  const fx = fixture(t);
  const logsDir = path.join(fx.dir, 'logs');
  mkdirSync(path.join(logsDir, 'a'), { recursive: true });
  const cases: { readonly template: string; readonly query: string; readonly over?: Partial<SessionInfo>; readonly expect: string | undefined; readonly escaped?: string }[] = [
    // publishing `cam?../escaped`: nginx-rtmp (and this server before) wrote logs/../escaped
    { template: `${logsDir}/$args`, query: '../escaped', expect: 'logs/..%2Fescaped', escaped: 'escaped' },
    { template: `${logsDir}/$args.log`, query: '../../escaped2', expect: 'logs/..%2F..%2Fescaped2.log' },
    // a whole `..` component
    { template: `${logsDir}/$args/dotdot`, query: '..', expect: undefined, escaped: 'dotdot' },
    { template: `${logsDir}/$args`, query: 'a/b', expect: 'logs/a%2Fb' },
    { template: `${logsDir}/$args`, query: 'a\\b', expect: 'logs/a%5Cb' },
    { template: `${logsDir}/$args`, query: 'a\u0000b\nc', expect: 'logs/a%00b%0Ac' },
    { template: `${logsDir}/$args`, query: '%2F', expect: 'logs/%252F' },
    // connect fields are client text too
    { template: `${logsDir}/$tcurl`, query: '', over: { tcUrl: 'rtmp://h/../../tc' }, expect: 'logs/rtmp:%2F%2Fh%2F..%2F..%2Ftc' },
    { template: `${logsDir}/x-$flashver`, query: '', over: { flashVer: '/../../fv' }, expect: 'logs/x-%2F..%2F..%2Ffv' },
  ];
  let n = 0;
  for (const c of cases) {
    const { mod } = build(t, appConfig([{ kind: 'exec_publish', argv: ['sh', '-c', 'echo hello', `>${c.template}`] }]));
    const { session } = build(t, appConfig([{ kind: 'exec_publish', argv: ['true'] }]));
    mod.published?.(publishCtx(session(`c${n++}`, c.over), 'cam', c.query), new LiveStream('src', 'cam'));
    if (c.expect !== undefined) {
      const file = path.join(fx.dir, c.expect);
      assert.ok(await until(() => existsSync(file) && readFileSync(file, 'utf8') === 'hello\n', 5000), `${JSON.stringify(c.query)}: output in ${c.expect}; found ${tree(fx.dir).join(', ')}`);
    } else {
      await sleep(500);
    }
    if (c.escaped !== undefined) assert.equal(existsSync(path.join(fx.dir, c.escaped)), false, `${JSON.stringify(c.query)} wrote outside logs/`);
    await mod.close?.();
  }
  // nothing at all outside logs/ (but the test script)
  assert.deepEqual(
    tree(fx.dir).filter((f) => !f.startsWith('logs')),
    ['child.cjs'],
  );
});

test('redirects: a name too long for a file name and an empty whole component are refused, logged once, and the program still runs', async (t) => {
  const fx = fixture(t);
  const logsDir = path.join(fx.dir, 'logs');
  mkdirSync(logsDir);
  const out = path.join(fx.dir, 'ran');
  const { mod, logs, session } = build(t, appConfig([{ kind: 'exec_publish', argv: [process.execPath, fx.script, out, '$name', `>${logsDir}/$args`] }]));
  mod.published?.(publishCtx(session('c1'), 'cam', 'x'.repeat(300)), new LiveStream('src', 'cam'));
  mod.published?.(publishCtx(session('c2'), 'cam2', ''), new LiveStream('src', 'cam2'));
  assert.ok(await until(() => starts(out).length === 2, 5000), 'both programs ran');
  const refused = logs.filter((l) => l.msg === 'exec: redirect refused (a client value), ignored');
  assert.equal(refused.length, 2, `one line per refused redirect: ${JSON.stringify(logs.map((l) => l.msg))}`);
  assert.equal(refused[0]!.fields['why'], 'a path component is too long');
  assert.match(String(refused[1]!.fields['why']), /leaves/);
  assert.deepEqual(readdirSync(logsDir), []);
});

// ------------------------------------------------------------- item 11: options

test('a client value starting with "-" never becomes an option: the command is refused (one line), not respawned; after "--" it is an argument', async (t) => {
  const fx = fixture(t);
  const out = (n: string): string => path.join(fx.dir, n);
  const { mod, logs, session } = build(
    t,
    appConfig([
      { kind: 'exec', argv: [process.execPath, fx.script, out('whole'), '$name'] },
      { kind: 'exec', argv: [process.execPath, fx.script, out('start'), '${name}_hd'] },
      { kind: 'exec', argv: [process.execPath, fx.script, out('args'), '-i', '$args'] },
      { kind: 'exec', argv: [process.execPath, fx.script, out('inside'), 'rtmp://h/app/$name', 'x$name'] },
      { kind: 'exec', argv: [process.execPath, fx.script, out('dashdash'), '-i', '--', '$name'] },
    ]),
  );
  const s = session('c1');
  mod.published?.(publishCtx(s, '-version', '-y'), new LiveStream('src', '-version'));
  assert.ok(await until(() => starts(out('inside')).length === 1 && starts(out('dashdash')).length === 1, 5000));
  assert.deepEqual(starts(out('inside'))[0], ['rtmp://h/app/-version', 'x-version']);
  assert.deepEqual(starts(out('dashdash'))[0], ['-i', '--', '-version']);
  // respawn_timeout is 200 ms: a refused command would have come back by now
  await sleep(1000);
  assert.deepEqual(starts(out('whole')), []);
  assert.deepEqual(starts(out('start')), []);
  assert.deepEqual(starts(out('args')), []);
  const refused = logs.filter((l) => l.msg === 'exec: command refused (a client value), not started');
  assert.equal(refused.length, 3, 'one line per refused command, no retries');
  assert.match(String(refused[0]!.fields['why']), /\$name would start an argument with "-"/);
  assert.match(String(refused[2]!.fields['why']), /\$args would start an argument with "-"/);
  assert.equal(mod.pids().length, 2);
});

test('exec_play with a "-" name is refused too, and a plain name still runs', async (t) => {
  const fx = fixture(t);
  const out = path.join(fx.dir, 'play');
  const { mod, session } = build(t, appConfig([{ kind: 'exec_play', argv: [process.execPath, fx.script, out, '$name'] }]));
  const ok = (): Promise<void> => Promise.resolve();
  await mod.play?.(playCtx(session('p1'), '--help'), ok);
  await mod.play?.(playCtx(session('p2'), 'cam'), ok);
  assert.ok(await until(() => starts(out).length === 1, 5000));
  await sleep(300);
  assert.deepEqual(starts(out), [['cam']]);
});

// ------------------------------------------------------------ item 12: fan-out

test('30 plays on one connection start at most EXEC_MAX_SESSION_CHILDREN (8) exec_play children; one warning', async (t) => {
  const fx = fixture(t);
  const out = path.join(fx.dir, 'play');
  const { mod, logs, session } = build(t, appConfig([{ kind: 'exec_play', argv: [process.execPath, fx.script, out, '$name'] }]));
  const s = session('attacker');
  for (let i = 0; i < 30; i++) await mod.play?.(playCtx(s, `s${i}`), () => Promise.resolve());
  assert.ok(await until(() => starts(out).length >= 8, 8000));
  await sleep(800);
  assert.equal(starts(out).length, 8, 'capped at 8');
  assert.equal(mod.pids().length, 8);
  assert.equal(logs.filter((l) => l.msg === 'exec: this connection runs too many children, command not started').length, 1);
  // another connection is not affected by the first one's bound
  await mod.play?.(playCtx(session('other'), 'cam'), () => Promise.resolve());
  assert.ok(await until(() => starts(out).length === 9, 5000));
});

test('the process-wide bound: 30 connections playing once each run at most maxChildren children', async (t) => {
  const fx = fixture(t);
  const out = path.join(fx.dir, 'play');
  const { mod, logs, session } = build(t, appConfig([{ kind: 'exec_play', argv: [process.execPath, fx.script, out, '$name'] }]), { maxChildren: 5 });
  for (let i = 0; i < 30; i++) await mod.play?.(playCtx(session(`c${i}`), `s${i}`), () => Promise.resolve());
  assert.ok(await until(() => starts(out).length >= 5, 8000));
  await sleep(800);
  assert.equal(starts(out).length, 5);
  assert.equal(mod.pids().length, 5);
  assert.equal(logs.filter((l) => l.msg === 'exec: too many children running, command not started').length, 1, 'one warning for the episode');
});

test('a play the rest of the chain refuses starts no exec_play and no exec_pull child', async (t) => {
  const fx = fixture(t);
  const play = path.join(fx.dir, 'play');
  const pull = path.join(fx.dir, 'pull');
  const { mod, session } = build(
    t,
    appConfig([
      { kind: 'exec_play', argv: [process.execPath, fx.script, play, '$name'] },
      { kind: 'exec_pull', argv: [process.execPath, fx.script, pull, '$name'] },
    ]),
  );
  for (let i = 0; i < 5; i++) {
    await assert.rejects(mod.play!(playCtx(session(`c${i}`), `s${i}`), () => Promise.reject(new Error('refused'))));
  }
  await sleep(500);
  assert.deepEqual(starts(play), []);
  assert.deepEqual(starts(pull), []);
  assert.deepEqual(mod.pids(), []);
});

test('end to end: a play the live step refuses (idle_streams off) starts no exec_pull and no exec_play child', { timeout: 30_000 }, async (t) => {
  const fx = fixture(t);
  const play = path.join(fx.dir, 'play');
  const pull = path.join(fx.dir, 'pull');
  const q = (a: string[]): string => a.map((x) => JSON.stringify(x)).join(' ');
  const config = parseConfigText(
    `rtmp { server { listen 127.0.0.1:0; application live { live on; idle_streams off;
       exec_pull ${q([process.execPath, fx.script, pull, '$name'])};
       exec_play ${q([process.execPath, fx.script, play, '$name'])}; } } }`,
    'exec-refused.conf',
  );
  const a = await startServer(t, config);
  const c = await RtmpClient.connect(`${a.url}/live`);
  t.after(() => c.destroy());
  for (let i = 0; i < 3; i++) await assert.rejects(c.play(`nobody${i}`));
  await sleep(1000);
  assert.deepEqual(starts(pull), [], 'exec_pull started for a refused play');
  assert.deepEqual(starts(play), [], 'exec_play started for a refused play');
  assert.ok(!c.closed && !c.socket.destroyed);
});

test('exec_pull: one connection playing 50 names starts at most 4 pull programs; the application at most maxPulls', async (t) => {
  const cmd: ExecCommand = { kind: 'exec_pull', argv: ['sh', '-c', 'exec sleep 60', 'sh', '$name'] };
  const one = build(t, appConfig([cmd]));
  const s = one.session('attacker');
  for (let i = 0; i < 50; i++) await one.mod.play?.(playCtx(s, `n${i}`), () => Promise.resolve());
  await sleep(800);
  assert.equal(one.mod.pids().length, 4, 'EXEC_MAX_SESSION_PULLS');
  assert.equal(one.logs.filter((l) => l.msg.startsWith('exec: too many exec_pull streams')).length, 1);
  await one.mod.close?.();

  const many = build(t, appConfig([cmd]), { maxPulls: 6 });
  for (let i = 0; i < 50; i++) await many.mod.play?.(playCtx(many.session(`c${i}`), `n${i}`), () => Promise.resolve());
  await sleep(800);
  assert.equal(many.mod.pids().length, 6, 'maxPulls');
  // the players of a name without a pull program: a later player of that name starts it once there is room
  many.mod.disconnect?.(many.session('c0'));
  assert.ok(await until(() => many.mod.pids().length === 5, 3000), 'the pull program of c0 ended with its last player');
  await many.mod.play?.(playCtx(many.session('late'), 'n40'), () => Promise.resolve());
  assert.ok(await until(() => many.mod.pids().length === 6, 3000));
});
