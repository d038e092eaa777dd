import assert from 'node:assert/strict';
import { outputErrors } from '../../src/core/metrics.js';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { test, type TestContext } from 'node:test';
import { parseConfigText } from '../../src/config/load.js';
import type { ServerConfig } from '../../src/config/types.js';
import { memoryLogger, type MemoryLogEntry } from '../../src/core/log.js';
import { buildModules } from '../../src/app/modules.js';
import type { RecordFs } from '../../src/record/disk.js';
import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType } from '../../src/rtmp/messages.js';
import { RtmpServer } from '../../src/server.js';
import { publishArgs, runFfmpeg } from '../helpers/ffmpeg.js';
import { hookServer } from '../helpers/hooks.js';
import { until } from '../helpers/server.js';
import { mountReadOnlyAndFull, unmountAll } from '../helpers/tmpfs.js';
import { summarize, tempDir } from './helpers.js';

async function start(t: TestContext, cfg: ServerConfig, fs?: RecordFs): Promise<{ server: RtmpServer; url: string; logs: MemoryLogEntry[] }> {
  const logs: MemoryLogEntry[] = [];
  const server = new RtmpServer(cfg, {
    logger: memoryLogger(logs),
    modules: buildModules,
    warmup: false,
    ...(fs !== undefined ? { record: { fs, limits: { maxBufferedBytes: 256 * 1024, maxBufferedFrames: 4096 } } } : {}),
  });
  await server.start();
  t.after(() => server.stop(1000));
  return { server, url: `rtmp://127.0.0.1:${server.port}`, logs };
}

/** A live player counting the video and audio frames it gets. */
async function player(t: TestContext, url: string, name: string): Promise<{ frames: () => number }> {
  const c = await RtmpClient.connect(url);
  t.after(() => c.destroy());
  let frames = 0;
  c.onMedia = (m) => {
    if (m.type === MessageType.Video || m.type === MessageType.Audio) frames++;
  };
  await c.play(name);
  return { frames: () => frames };
}

const failureLines = (logs: MemoryLogEntry[], stream: string): MemoryLogEntry[] =>
  logs.filter((l) => (l.level === 'warn' || l.level === 'error') && l.fields['stream'] === stream);

test('disk problems end that recording alone: read-only and missing record_path, a full disk (ENOSPC); players lose nothing; on_record_done', { timeout: 90_000 }, async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'rec-disk-'));
  const mounted: string[] = [];
  // the after hooks run in order: unmount first, then remove
  t.after(() => {
    unmountAll(mounted);
    rmSync(dir, { recursive: true, force: true });
  });
  const fs = mountReadOnlyAndFull(mounted, dir, 'ro', 'full');
  if (typeof fs === 'string') {
    t.skip(`cannot make a small file system here: ${fs}`);
    return;
  }
  const { ro, full } = fs;
  const hooks = await hookServer(t);
  const app = (name: string, p: string): string => `application ${name} { live on; record all; record_path ${p}; on_record_done ${hooks.url}/${name}; }`;
  const cfg = parseConfigText(`rtmp { server { listen 127.0.0.1:0; ${app('ro', ro)} ${app('missing', path.join(dir, 'nowhere'))} ${app('full', full)} } }`, 'disk.conf');
  const { server, url, logs } = await start(t, cfg);
  const apps = ['ro', 'missing', 'full'];
  const players = await Promise.all(apps.map((a) => player(t, `${url}/${a}`, 's')));
  const runs = await Promise.all(apps.map((a) => runFfmpeg(publishArgs(`${url}/${a}/s`, 5, { size: '640x360' }), 60_000)));
  for (const r of runs) t.after(() => r.kill());
  for (const r of runs) assert.equal((await r.done).code, 0);

  for (const [i, a] of apps.entries()) {
    const stream = server.hub.get(a, 's');
    const sent = (stream?.stats.videoFrames ?? 0) + (stream?.stats.audioFrames ?? 0);
    assert.ok(sent > 150, `${a}: ${sent} frames published`);
    assert.ok(await until(() => players[i]!.frames() === sent, 10_000), `${a}: the player got ${players[i]!.frames()} of ${sent} frames`);
    assert.ok(await until(() => hooks.calls.some((c) => c.path === `/${a}`), 5000), `${a}: on_record_done`);
    const lines = failureLines(logs, 's').filter((l) => l.fields['app'] === a || JSON.stringify(l.fields).includes(`/${a}`) || l.msg.includes(`/${a}`));
    assert.equal(lines.length, 1, `${a}: one log line: ${JSON.stringify(lines)}`);
    assert.match(lines[0]!.msg, /ERR_OUTPUT_WRITE_FAILED|cannot (open|write)/);
    assert.equal(outputErrors.get({ output: 'record', app: a }), 1, `${a}: rtmp_output_errors_total{output="record"}`);
  }
  assert.match(failureLines(logs, 's').map((l) => l.msg).join('\n'), /ENOSPC|disk full/);
  // the full disk's file is readable up to where the disk filled
  const files = readdirSync(full);
  assert.deepEqual(files, ['s.flv']);
  const s = summarize(path.join(full, 's.flv'));
  assert.ok(s.mediaVideo > 0 && s.startsOnKeyframe);
});

test('a disk slower than the stream: the complete reader\'s bound cuts the recording off (one log line, on_record_done), players lose nothing', { timeout: 60_000 }, async (t) => {
  const dir = tempDir(t);
  const hooks = await hookServer(t);
  // every write waits 1.5 s: far slower than a 640x360 stream
  const slow: RecordFs = {
    open: async (p, flags) => {
      const fh = await open(p, flags);
      const writev = fh.writev.bind(fh);
      fh.writev = (async (buffers: NodeJS.ArrayBufferView[], position?: number) => {
        await new Promise((r) => setTimeout(r, 1500));
        return writev(buffers, position);
      }) as typeof fh.writev;
      return fh;
    },
    size: async () => undefined,
  };
  const cfg = parseConfigText(`rtmp { server { listen 127.0.0.1:0; application live { live on; record all; record_path ${dir}; on_record_done ${hooks.url}/done; } } }`, 'slow.conf');
  const { server, url, logs } = await start(t, cfg, slow);
  const p = await player(t, `${url}/live`, 's');
  const run = await runFfmpeg([...publishArgs(`${url}/live/s`, 5, { size: '640x360' }).slice(0, -3), '-b:v', '3M', '-f', 'flv', `${url}/live/s`], 60_000);
  t.after(() => run.kill());
  assert.ok(await until(() => hooks.calls.length === 1, 20_000), 'on_record_done while the stream goes on');
  assert.ok(server.hub.get('live', 's')?.active, 'the stream is still published');
  assert.equal((await run.done).code, 0);
  const stream = server.hub.get('live', 's');
  const sent = (stream?.stats.videoFrames ?? 0) + (stream?.stats.audioFrames ?? 0);
  assert.ok(await until(() => p.frames() === sent, 10_000), `the player got ${p.frames()} of ${sent}`);
  const lines = failureLines(logs, 's');
  assert.equal(lines.length, 1, JSON.stringify(lines));
  assert.match(lines[0]!.msg, /buffer full/);
  const s = summarize(path.join(dir, 's.flv'));
  assert.ok(s.mediaVideo > 0 && s.startsOnKeyframe);
  assert.equal(s.truncatedAt, undefined, 'the file ends on a whole tag');
});
