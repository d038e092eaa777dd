import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** A tool for tests: its environment variable, else the devDependency's binary, else the system's. */
async function toolPath(envVar: string, load: () => Promise<{ default: { path: string } }>, system: string): Promise<string> {
  const env = process.env[envVar];
  if (env !== undefined && env !== '' && existsSync(env)) return env;
  try {
    const mod = await load();
    if (existsSync(mod.default.path)) return mod.default.path;
  } catch {
    // fall through to the system's binary
  }
  return system;
}

/** ffmpeg for tests: FFMPEG_PATH, else @ffmpeg-installer/ffmpeg's binary, else the system's. */
export function ffmpegPath(): Promise<string> {
  return toolPath('FFMPEG_PATH', () => import('@ffmpeg-installer/ffmpeg') as Promise<{ default: { path: string } }>, 'ffmpeg');
}

/** ffprobe for tests: FFPROBE_PATH, else @ffprobe-installer/ffprobe's binary, else the system's. */
export function ffprobePath(): Promise<string> {
  return toolPath('FFPROBE_PATH', () => import('@ffprobe-installer/ffprobe') as Promise<{ default: { path: string } }>, 'ffprobe');
}

/** A stream of `ffprobe -show_streams` (the fields the tests read). */
export interface ProbeStream {
  readonly codec_type: string;
  readonly codec_name: string;
  readonly width?: number;
  readonly height?: number;
  readonly sample_rate?: string;
}

/** Runs `bin` with `args`: its exit code (-1 when it could not start), stdout and stderr; killed after `timeoutMs`. */
export async function runTool(bin: string, args: readonly string[], timeoutMs: number): Promise<{ code: number | null; out: string; err: string }> {
  const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise<number | null>((resolve) => {
    child.on('close', (c) => resolve(c));
    child.on('error', () => resolve(-1));
  });
  clearTimeout(timer);
  return { code, out, err };
}

/** Runs ffprobe with `args` (runTool). */
export async function runFfprobe(args: readonly string[], timeoutMs = 30_000): Promise<{ code: number | null; out: string; err: string }> {
  return runTool(await ffprobePath(), args, timeoutMs);
}

/** ffprobe -show_streams as JSON (extra arguments before the output options); rejects with its stderr on failure. */
export async function ffprobe(input: string, extra: readonly string[] = []): Promise<{ streams: ProbeStream[]; stderr: string }> {
  const r = await runFfprobe(['-v', 'error', ...extra, '-print_format', 'json', '-show_streams', input]);
  if (r.code !== 0) throw new Error(`ffprobe ${input} exited ${String(r.code)}: ${r.err}`);
  return { streams: (JSON.parse(r.out) as { streams: ProbeStream[] }).streams, stderr: r.err };
}

export interface FfmpegRun {
  readonly child: ChildProcess;
  /** resolves when ffmpeg exits, with its code and stderr */
  readonly done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>;
  kill(): void;
}

/** Starts ffmpeg with arguments; the caller kills it in t.after. */
export async function runFfmpeg(args: readonly string[], timeoutMs = 60_000): Promise<FfmpegRun> {
  const bin = await ffmpegPath();
  const child = spawn(bin, ['-hide_banner', '-nostdin', '-loglevel', 'info', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr?.setEncoding('utf8');
  child.stderr?.on('data', (d: string) => {
    stderr += d;
    if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const done = new Promise<{ code: number | null; signal: NodeJS.Signals | null; stderr: string }>((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stderr });
    });
    child.on('error', (e) => {
      clearTimeout(timer);
      resolve({ code: -1, signal: null, stderr: `${stderr}\nspawn error: ${e.message}` });
    });
  });
  return {
    child,
    done,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

/** A real-time H.264 + AAC test pattern published to url for `seconds`. */
export function publishArgs(url: string, seconds: number, opts: { size?: string; rate?: number; gop?: number } = {}): string[] {
  const size = opts.size ?? '320x240';
  const rate = opts.rate ?? 25;
  const gop = opts.gop ?? rate;
  return [
    '-re',
    '-f', 'lavfi', '-i', `testsrc=size=${size}:rate=${rate}`,
    '-f', 'lavfi', '-i', 'sine=frequency=440:sample_rate=44100',
    '-t', String(seconds),
    '-c:v', 'libx264', '-preset', 'ultrafast', '-tune', 'zerolatency', '-g', String(gop), '-pix_fmt', 'yuv420p',
    '-c:a', 'aac', '-b:a', '64k',
    '-f', 'flv', url,
  ];
}

/**
 * Counts the packets of each stream of a media file with ffmpeg's framecrc
 * muxer (one line per packet: "stream, dts, pts, duration, size, crc"), and
 * reads the codecs from its stream listing. No ffprobe needed.
 */
export async function probePackets(file: string): Promise<{ video: number; audio: number; videoCodec: string; audioCodec: string; dts: number[][] }> {
  const bin = await ffmpegPath();
  const child = spawn(bin, ['-hide_banner', '-nostdin', '-i', file, '-map', '0', '-c', 'copy', '-f', 'framecrc', '-'], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  await new Promise<void>((resolve) => child.on('close', () => resolve()));
  const streams: string[] = [];
  for (const m of err.matchAll(/Stream #0:(\d+)[^:]*: (Video|Audio): (\w+)/g)) streams[Number(m[1])] = `${m[2]}:${m[3]}`;
  const counts: number[] = [];
  const dts: number[][] = [];
  for (const line of out.split('\n')) {
    const m = /^\s*(\d+),\s*(-?\d+),/.exec(line);
    if (m === null) continue;
    const idx = Number(m[1]);
    counts[idx] = (counts[idx] ?? 0) + 1;
    (dts[idx] ??= []).push(Number(m[2]));
  }
  let video = 0, audio = 0, videoCodec = '', audioCodec = '';
  streams.forEach((s, i) => {
    if (s.startsWith('Video:')) { video += counts[i] ?? 0; videoCodec = s.slice(6); }
    else if (s.startsWith('Audio:')) { audio += counts[i] ?? 0; audioCodec = s.slice(6); }
  });
  return { video, audio, videoCodec, audioCodec, dts };
}
