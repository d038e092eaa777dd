/**
 * Generates the benchmark's test media with the ffmpeg that the
 * `@ffmpeg-installer/ffmpeg` devDependency ships (or $FFMPEG_PATH):
 *
 * - bench/media/test.flv    H.264 1280x720 30 fps, GOP 2 s, ~2.5 Mbit/s CBR
 *                           + AAC-LC 44.1 kHz stereo 128 kbit/s: ~2.66 Mbit/s
 * - bench/media/test-1m.flv H.264 640x360 30 fps, GOP 2 s, ~0.9 Mbit/s CBR
 *                           + AAC 96 kbit/s: ~1 Mbit/s (publishers mode)
 *
 * - bench/media/vod/vod.flv and vod.mp4 (only with --vod): the 1 Mbit/s profile,
 *                           10 minutes, as FLV and remuxed (-c copy) as MP4: the VOD
 *                           benchmark's files (the same bytes per second in both)
 *
 * The picture is testsrc2 with temporal noise so the encoder really spends
 * its bitrate (no filler). bench/media/ is git-ignored.
 *
 *   node --import tsx bench/make-media.ts [--force] [--vod]
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const MEDIA_DIR = fileURLToPath(new URL('./media/', import.meta.url));

export interface MediaProfile {
  readonly file: string;
  readonly seconds: number;
  readonly size: string;
  readonly videoKbps: number;
  readonly audioKbps: number;
}

export const PROFILES = {
  main: { file: 'test.flv', seconds: 30, size: '1280x720', videoKbps: 2500, audioKbps: 128 },
  oneMbit: { file: 'test-1m.flv', seconds: 30, size: '640x360', videoKbps: 880, audioKbps: 96 },
  vod: { file: 'vod/vod.flv', seconds: 600, size: '640x360', videoKbps: 880, audioKbps: 96 },
} as const satisfies Record<string, MediaProfile>;

export type ProfileName = keyof typeof PROFILES;

export function mediaPath(profile: ProfileName): string {
  return path.join(MEDIA_DIR, PROFILES[profile].file);
}

async function ffmpegPath(): Promise<string> {
  const fromEnv = process.env['FFMPEG_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const mod = (await import('@ffmpeg-installer/ffmpeg')) as { default: { path: string } };
  return mod.default.path;
}

function run(cmd: string, args: readonly string[]): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      err = (err + d.toString()).slice(-4000);
    });
    p.on('error', reject);
    p.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${cmd} exited with ${code}:\n${err}`))));
  });
}

/** Encodes one profile into its file (atomically: a temp file renamed at the end). */
export async function makeMedia(profile: ProfileName, force = false): Promise<string> {
  const p = PROFILES[profile];
  const out = path.join(MEDIA_DIR, p.file);
  if (!force && existsSync(out)) return out;
  mkdirSync(path.dirname(out), { recursive: true });
  const tmp = `${out}.${process.pid}.tmp.flv`;
  const v = p.videoKbps;
  const args = [
    '-hide_banner', '-loglevel', 'error', '-y',
    '-f', 'lavfi', '-i', `testsrc2=size=${p.size}:rate=30,noise=alls=12:allf=t`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100,aformat=channel_layouts=stereo',
    '-t', String(p.seconds),
    '-c:v', 'libx264', '-preset', 'veryfast', '-profile:v', 'main', '-pix_fmt', 'yuv420p',
    '-b:v', `${v}k`, '-minrate', `${v}k`, '-maxrate', `${v}k`, '-bufsize', `${v}k`,
    '-g', '60', '-keyint_min', '60', '-sc_threshold', '0', '-bf', '0',
    '-c:a', 'aac', '-b:a', `${p.audioKbps}k`, '-ar', '44100', '-ac', '2',
    '-f', 'flv', tmp,
  ];
  process.stderr.write(`make-media: encoding ${out} (${p.seconds} s, ${p.size}, ~${v + p.audioKbps} kbit/s)...\n`);
  try {
    await run(await ffmpegPath(), args);
    renameSync(tmp, out);
  } finally {
    rmSync(tmp, { force: true });
  }
  return out;
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
/** The VOD benchmark's files: the `vod` profile as FLV, and the same streams remuxed as MP4 (moov at the end). */
export async function makeVodMedia(force = false): Promise<{ flv: string; mp4: string }> {
  const flv = await makeMedia('vod', force);
  const mp4 = flv.replace(/\.flv$/, '.mp4');
  if (force || !existsSync(mp4)) {
    const tmp = `${mp4}.${process.pid}.tmp.mp4`;
    try {
      await run(await ffmpegPath(), ['-hide_banner', '-loglevel', 'error', '-y', '-i', flv, '-c', 'copy', '-f', 'mp4', tmp]);
      renameSync(tmp, mp4);
    } finally {
      rmSync(tmp, { force: true });
    }
  }
  return { flv, mp4 };
}

if (isMain) {
  const force = process.argv.includes('--force');
  for (const name of Object.keys(PROFILES) as ProfileName[]) {
    if (name === 'vod') continue;
    const f = await makeMedia(name, force);
    process.stdout.write(`${f}\n`);
  }
  if (process.argv.includes('--vod')) {
    const v = await makeVodMedia(force);
    process.stdout.write(`${v.flv}\n${v.mp4}\n`);
  }
}
