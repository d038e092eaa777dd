import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { TestContext } from 'node:test';
import { FlvTagType, readFlvFile } from '../../src/media/flv.js';
import { decodeAmf0 } from '../../src/rtmp/amf0.js';
import { amfObjectOf, type AmfObject } from '../../src/rtmp/amf-types.js';
import { freePort, runCli } from '../helpers/cli.js';
import { ffprobePath, publishArgs, runFfmpeg, runFfprobe } from '../helpers/ffmpeg.js';
import { sleep } from '../helpers/server.js';

export { ffprobePath };

export interface ProbeResult {
  readonly format: { duration?: string; format_name?: string };
  readonly streams: { codec_type: string; codec_name: string; nb_read_frames?: string; nb_read_packets?: string }[];
}

/** ffprobe -show_format -show_streams -count_packets as JSON. */
export async function probe(file: string): Promise<ProbeResult> {
  const { out } = await runFfprobe(['-v', 'error', '-print_format', 'json', '-show_format', '-show_streams', '-count_packets', file]);
  return JSON.parse(out === '' ? '{"format":{},"streams":[]}' : out) as ProbeResult;
}

export function tempDir(t: TestContext, prefix = 'rec-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

export interface FlvSummary {
  readonly audio: number;
  readonly video: number;
  readonly videoKeyframes: number;
  readonly videoConfigs: number;
  readonly audioConfigs: number;
  /** types of the first tags after the metadata */
  readonly firstTypes: number[];
  /** the first media frame after the codec headers is a video keyframe */
  readonly startsOnKeyframe: boolean;
  readonly metadata: AmfObject | undefined;
  readonly lastTimestamp: number;
  readonly firstTimestamp: number;
  readonly truncatedAt: number | undefined;
  /** media frames that are not codec headers: video, audio */
  readonly mediaVideo: number;
  readonly mediaAudio: number;
}

/** Reads a recorded FLV file with the project's own FLV reader. */
export function summarize(file: string): FlvSummary {
  const parsed = readFlvFile(readFileSync(file));
  let audio = 0, video = 0, videoKeyframes = 0, videoConfigs = 0, audioConfigs = 0;
  let metadata: AmfObject | undefined;
  const firstTypes: number[] = [];
  let startsOnKeyframe: boolean | undefined;
  let lastTimestamp = 0;
  let firstTimestamp = -1;
  for (const tag of parsed.tags) {
    if (firstTypes.length < 4) firstTypes.push(tag.type);
    if (tag.type === FlvTagType.Script) {
      const v = decodeAmf0(tag.data);
      if (v[0] === 'onMetaData' && v[1] !== undefined) metadata = amfObjectOf(v[1]);
      continue;
    }
    lastTimestamp = Math.max(lastTimestamp, tag.timestamp);
    if (firstTimestamp < 0) firstTimestamp = tag.timestamp;
    const b0 = tag.data[0] ?? 0;
    if (tag.type === FlvTagType.Video) {
      video++;
      const isConfig = (b0 & 0x0f) === 7 && tag.data[1] === 0;
      if (isConfig) videoConfigs++;
      else {
        // an AVC end of sequence (packet type 2) is not a keyframe
        const key = b0 >> 4 === 1 && ((b0 & 0x0f) !== 7 || tag.data[1] === 1);
        if (key) videoKeyframes++;
        startsOnKeyframe ??= key;
      }
    } else if (tag.type === FlvTagType.Audio) {
      audio++;
      const isConfig = b0 >> 4 === 10 && tag.data[1] === 0;
      if (isConfig) audioConfigs++;
      else startsOnKeyframe ??= false;
    }
  }
  return {
    audio,
    video,
    videoKeyframes,
    videoConfigs,
    audioConfigs,
    firstTypes,
    startsOnKeyframe: startsOnKeyframe ?? false,
    metadata,
    lastTimestamp,
    firstTimestamp: Math.max(0, firstTimestamp),
    truncatedAt: parsed.truncatedAt,
    mediaVideo: video - videoConfigs,
    mediaAudio: audio - audioConfigs,
  };
}

/**
 * The crash scenario of the FLV and MP4 recorders: the CLI server as a child
 * records stream `crash` (`record all`, `record_format` as given) while ffmpeg
 * publishes, then is killed with SIGKILL about 5 s after the file opened.
 * Returns the file's path and the seconds recorded before the kill.
 */
export async function recordThenKill(t: TestContext, dir: string, format: 'flv' | 'mp4'): Promise<{ file: string; recorded: number }> {
  const port = await freePort();
  const conf = path.join(dir, 'crash.conf');
  const fmt = format === 'mp4' ? ' record_format mp4;' : '';
  writeFileSync(conf, `rtmp { server { listen 127.0.0.1:${port}; application live { live on; record all;${fmt} record_path ${dir}; } } }\n`);
  const server = runCli(['-c', conf]);
  t.after(() => server.kill());
  assert.ok(await server.waitFor(/listening|started/i), server.stderr().slice(-2000));
  const ff = await runFfmpeg(publishArgs(`rtmp://127.0.0.1:${port}/live/crash`, 30, { rate: 25, gop: 25 }), 60_000);
  t.after(() => ff.kill());
  assert.ok(await server.waitFor(/record: file opened/), server.stderr().slice(-2000));
  const opened = Date.now();
  await sleep(5000);
  const recorded = (Date.now() - opened) / 1000;
  server.child.kill('SIGKILL');
  const exit = await server.exited;
  assert.equal(exit.signal, 'SIGKILL');
  ff.kill();
  return { file: path.join(dir, `crash.${format}`), recorded };
}
