import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test, type TestContext } from 'node:test';
import { RtmpClient } from '../../src/rtmp/client.js';
import { freePort, runCli, type CliProcess } from '../helpers/cli.js';
import { sleep, until } from '../helpers/server.js';
import { playCounting, publishSynthetic } from '../helpers/synthetic.js';

function tempDir(t: TestContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'rtmp-cli-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function cli(t: TestContext, args: string[]): CliProcess {
  const p = runCli(args);
  t.after(() => p.kill());
  return p;
}

const conf = (port: number, apps: string): string => `
worker_processes 1;
events { worker_connections 1024; }
rtmp {
  server {
    listen 127.0.0.1:${port};
    chunk_size 4096;
${apps}
  }
}
`;

test('--help and --version', async (t) => {
  const h = cli(t, ['--help']);
  assert.equal((await h.exited).code, 0);
  assert.match(h.stdout(), /Usage: rtmp-server \[PORT\]/);
  const v = cli(t, ['--version']);
  assert.equal((await v.exited).code, 0);
  assert.match(v.stdout(), /^rtmp-server \d+\.\d+\.\d+/);
  const bad = cli(t, ['--bogus']);
  assert.equal((await bad.exited).code, 2);
  assert.match(bad.stderr(), /unknown argument: --bogus/);
});

test('-t checks a configuration like nginx -t', async (t) => {
  const dir = tempDir(t);
  const good = join(dir, 'good.conf');
  writeFileSync(good, conf(1935, 'application live { live on; }'));
  const ok = cli(t, ['-t', '-c', good]);
  assert.equal((await ok.exited).code, 0, ok.stderr());
  assert.match(ok.stdout(), /is ok/);
  assert.match(ok.stderr(), /warning: .*worker_processes/);
  const badFile = join(dir, 'bad.conf');
  writeFileSync(badFile, conf(1935, 'application live {\n live on;\n frobnicate 3;\n }'));
  const bad = cli(t, ['-t', '-c', badFile]);
  assert.equal((await bad.exited).code, 1);
  assert.match(bad.stderr(), /bad\.conf:\d+:\d+: .*frobnicate/);
});

test('PORT argument, a publish and play through the CLI, SIGTERM exits 0 and tells clients', { timeout: 60_000 }, async (t) => {
  const port = await freePort();
  const p = cli(t, [String(port)]);
  assert.ok(await p.waitFor(/RTMP listening on 0\.0\.0\.0:\d+/), p.stderr());
  const url = `rtmp://127.0.0.1:${port}/live`;
  const pub = await publishSynthetic(url, 'term');
  t.after(() => pub.stop());
  const player = await playCounting(url, 'term');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video > 10));
  let closedAt = 0;
  player.client.onClose = () => (closedAt = Date.now());
  const told: string[] = [];
  player.client.onStatus = (info) => told.push(String(info['code']));
  const t0 = Date.now();
  p.child.kill('SIGTERM');
  const r = await p.exited;
  assert.equal(r.code, 0, p.stderr());
  assert.ok(Date.now() - t0 < 8000, 'stopped within the shutdown timeout');
  assert.ok(await until(() => closedAt > 0, 2000), 'the player saw its connection close');
  assert.ok(told.includes('NetStream.Play.Stop') || told.includes('NetStream.Play.UnpublishNotify'), `the player was told: ${told.join(', ')}`);
  assert.match(p.stderr(), /"msg":"shutting down"/);
  assert.match(p.stderr(), /"msg":"publish"/);
  assert.match(p.stderr(), /"msg":"play"/);
  // the embedded default configuration starts cold (warmup off since issue 14)
  assert.doesNotMatch(p.stderr(), /warm-up/);
});

test('SIGHUP reloads: a running stream keeps flowing, new applications work, a bad file is refused', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'rtmp.conf');
  const port = await freePort();
  writeFileSync(file, conf(port, 'application live { live on; }'));
  const p = cli(t, ['-c', file]);
  assert.ok(await p.waitFor(/RTMP listening/), p.stderr());
  const url = `rtmp://127.0.0.1:${port}`;
  await assert.rejects(RtmpClient.connect(`${url}/other`), /Rejected|refused/);
  const pub = await publishSynthetic(`${url}/live`, 'r');
  t.after(() => pub.stop());
  const player = await playCounting(`${url}/live`, 'r');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video > 10));

  writeFileSync(file, conf(port, 'application live { live on; }\n application other { live on; }'));
  p.child.kill('SIGHUP');
  assert.ok(await p.waitFor(/configuration reloaded/), p.stderr());
  const other = await RtmpClient.connect(`${url}/other`);
  await other.close();
  const before = player.video;
  await sleep(600);
  assert.ok(player.video > before + 5, 'the stream flows across the reload');

  writeFileSync(file, conf(port, 'application live { live on; nonsense; }'));
  p.child.kill('SIGHUP');
  assert.ok(await p.waitFor(/new configuration refused/), p.stderr());
  const still = await RtmpClient.connect(`${url}/other`);
  await still.close();
  const before2 = player.video;
  await sleep(600);
  assert.ok(player.video > before2 + 5);
  assert.equal(player.client.closed, false);
  assert.equal(player.backwards, 0);
});

test('SIGHUP with an empty file is refused; with server blocks swapped each port keeps its own applications', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'rtmp.conf');
  const [pa, pb] = [await freePort(), await freePort()];
  const blocks = (first: string, second: string): string => `rtmp {\n${first}\n${second}\n}\n`;
  const a = `server { listen 127.0.0.1:${pa}; application a { live on; } }`;
  const b = `server { listen 127.0.0.1:${pb}; application b { live on; } }`;
  writeFileSync(file, blocks(a, b));
  const p = cli(t, ['-c', file]);
  assert.ok(await p.waitFor(new RegExp(`RTMP listening on 127\\.0\\.0\\.1:${pb}`)), p.stderr());
  const pub = await publishSynthetic(`rtmp://127.0.0.1:${pa}/a`, 'r');
  t.after(() => pub.stop());
  const player = await playCounting(`rtmp://127.0.0.1:${pa}/a`, 'r');
  t.after(() => player.client.destroy());
  assert.ok(await until(() => player.video > 10));
  const serves = async (port: number, app: string): Promise<boolean> => {
    try {
      await (await RtmpClient.connect(`rtmp://127.0.0.1:${port}/${app}`)).close();
      return true;
    } catch {
      return false;
    }
  };

  writeFileSync(file, '');
  p.child.kill('SIGHUP');
  assert.ok(await p.waitFor(/ERR_CONFIG_RELOAD.*new configuration refused|new configuration refused.*ERR_CONFIG_RELOAD/), p.stderr());
  assert.doesNotMatch(p.stderr(), /configuration reloaded/);
  assert.equal(await serves(pa, 'a'), true, 'the old configuration still serves new clients');
  assert.equal(await serves(pb, 'b'), true);

  writeFileSync(file, blocks(b, a));
  p.child.kill('SIGHUP');
  assert.ok(await p.waitFor(/configuration reloaded/), p.stderr());
  assert.equal(await serves(pa, 'a'), true, 'port a serves a');
  assert.equal(await serves(pa, 'b'), false, 'port a does not serve b');
  assert.equal(await serves(pb, 'b'), true, 'port b serves b');
  const before = player.video;
  await sleep(600);
  assert.ok(player.video > before + 5, 'the stream flows across both signals');
  assert.equal(player.client.closed, false);
});
