import { ffmpegPath, runFfmpeg, runTool } from './ffmpeg.js';

export type VodMediaKind = 'mp4' | 'mp4-faststart' | 'flv';

/**
 * Makes a test file with ffmpeg: H.264 (testsrc, 25 fps, a keyframe every `gop`
 * frames, no B-frames unless `bframes`) + AAC (sine), `seconds` long, not real time.
 */
export async function makeVodFile(file: string, kind: VodMediaKind, opts: { seconds?: number; gop?: number; bframes?: boolean; size?: string; keyframeIndex?: boolean } = {}): Promise<void> {
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
    ...(kind === 'flv' ? [...(opts.keyframeIndex === true ? ['-flvflags', 'add_keyframe_index'] : []), '-f', 'flv'] : ['-f', 'mp4']),
    '-y', file,
  ];
  const run = await runFfmpeg(args, 60_000);
  const r = await run.done;
  if (r.code !== 0) throw new Error(`ffmpeg failed making ${file}: ${r.stderr.slice(-2000)}`);
}

/**
 * Plays `url` with ffmpeg (`inputArgs` before -i, e.g. ['-ss', '5']) copying
 * every packet to the framecrc muxer, with the source's timestamps kept
 * (-copyts): counts of video/audio packets and the video packets' dts (ms for
 * an RTMP/FLV input).
 */
export async function playWithFfmpeg(url: string, inputArgs: readonly string[] = [], timeoutMs = 60_000): Promise<{ video: number; audio: number; videoCodec: string; videoDts: number[]; stderr: string }> {
  const run = await runTool(await ffmpegPath(), ['-hide_banner', '-nostdin', ...inputArgs, '-i', url, '-map', '0', '-c', 'copy', '-copyts', '-f', 'framecrc', '-'], timeoutMs);
  const streams: string[] = [];
  for (const m of run.err.matchAll(/Stream #0:(\d+)[^:]*: (Video|Audio): (\w+)/g)) streams[Number(m[1])] = `${m[2]}:${m[3]}`;
  let video = 0;
  let audio = 0;
  const videoDts: number[] = [];
  for (const line of run.out.split('\n')) {
    const m = /^\s*(\d+),\s*(-?\d+),/.exec(line);
    if (m === null) continue;
    const kind = streams[Number(m[1])] ?? '';
    if (kind.startsWith('Video:')) {
      video++;
      videoDts.push(Number(m[2]));
    } else if (kind.startsWith('Audio:')) audio++;
  }
  const vs = streams.find((s) => s?.startsWith('Video:') === true);
  return { video, audio, videoCodec: vs?.slice(6) ?? '', videoDts, stderr: run.err };
}

