import { runFfmpeg } from './ffmpeg.js';

export type VodMediaKind = 'mp4' | 'mp4-faststart' | 'flv';

/**
 * Makes a test file with ffmpeg: H.264 (testsrc, 25 fps, a keyframe every `gop`
 * frames, no B-frames unless `bframes`) + AAC (sine), `seconds` long, not real time.
 */
export async function makeVodFile(file: string, kind: VodMediaKind, opts: { seconds?: number; gop?: number; bframes?: boolean; size?: string } = {}): Promise<void> {
  const seconds = opts.seconds ?? 4;
  const gop = opts.gop ?? 25;
  const args = [
    '-f', 'lavfi', '-i', `testsrc=size=${opts.size ?? '160x120'}:rate=25`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-g', String(gop), '-keyint_min', String(gop), '-sc_threshold', '0', '-pix_fmt', 'yuv420p',
    ...(opts.bframes === true ? ['-bf', '2'] : ['-bf', '0']),
    '-c:a', 'aac', '-b:a', '48k',
    ...(kind === 'mp4-faststart' ? ['-movflags', '+faststart'] : []),
    ...(kind === 'flv' ? ['-f', 'flv'] : ['-f', 'mp4']),
    '-y', file,
  ];
  const run = await runFfmpeg(args, 60_000);
  const r = await run.done;
  if (r.code !== 0) throw new Error(`ffmpeg failed making ${file}: ${r.stderr.slice(-2000)}`);
}
