/**
 * The boot warm-up: before the server lets its first client in, it plays a
 * short synthetic stream to itself over loopback, so that V8 has compiled the
 * publish, fan-out and join paths before a real crowd arrives.
 *
 * Why: a fresh Node.js process runs its JavaScript in the interpreter and
 * baseline tiers first, and optimizes a function only after it has run for a
 * while. Under a real load that takes 10-30 s, and it happens on the server's
 * one core while the players are joining: first keyframes come later and the
 * CPU per delivered Gbit is higher for the first half minute. nginx-rtmp has
 * no such phase. The warm-up moves it before the first accept (bench/RESULTS.md
 * has the measurements).
 *
 * What it sends looks like a real H.264/AAC stream to the server's code (the
 * bytes the live path classifies: AVC sequence header, keyframes, inter
 * frames, AAC header and raw frames, onMetaData) on three streams, at sizes
 * that take both the single-chunk and the multi-chunk paths. Players join while
 * it runs, so their handshake, connect, play and GOP replay run too. Nothing
 * here touches a file, a hook or a relay: the server runs it in a private
 * application with only the live step (see RtmpServer.warmUp).
 *
 * Off by default since issue 14 (`warmup on` turns it on): without the runtime
 * tricks it leaned on (a lowered V8 interrupt budget, objects kept alive for
 * the JIT, a forced collection after it), it measured no CPU gain at 200 + 200
 * players and left the idle server 16-19 MiB larger (bench/RESULTS.md, 2026-12-07).
 */
import { RtmpClient } from './rtmp/client.js';
import { MessageType } from './rtmp/messages.js';

export interface WarmupOptions {
  /** players that join while the stream runs (default 20) */
  readonly players?: number;
  /** audio and video messages the publisher sends (default 2000) */
  readonly messages?: number;
  /** stop whatever is left after this long (ms, default 5000) */
  readonly timeoutMs?: number;
  /** stops early when true (the server is stopping) */
  readonly aborted?: () => boolean;
}

export interface WarmupReport {
  readonly players: number;
  readonly messages: number;
  readonly ms: number;
  /** why it ended before sending every message, if it did */
  readonly stopped?: string;
}

/** Frame durations of the synthetic stream (ms of media time): 30 fps video, 48 kHz AAC. */
const VIDEO_FRAME_MS = 33;
const AUDIO_FRAME_MS = 21;
/** a keyframe every 60 video frames (2 s), like OBS's default */
const GOP_FRAMES = 60;
/**
 * Publishers, each its own stream. The last one stops at 20 % of the run, and
 * a quarter of the players leave at 30 %: the paths of a departure run (and
 * change what V8 assumed of the objects) during the warm-up, not at its end.
 */
const STREAMS = 3;

/** An FLV video tag body: AVC (codec 7), frame type, packet type, composition time 0, then `size` bytes. */
function avcTag(frameType: 1 | 2, packetType: 0 | 1, size: number): Buffer {
  const b = Buffer.alloc(5 + size, 0x5a);
  b[0] = (frameType << 4) | 7;
  b[1] = packetType;
  b[2] = b[3] = b[4] = 0;
  return b;
}

/** An FLV audio tag body: AAC (10), 44 kHz, 16-bit, stereo, packet type, then `size` bytes. */
function aacTag(packetType: 0 | 1, size: number): Buffer {
  const b = Buffer.alloc(2 + size, 0x21);
  b[0] = 0xaf;
  b[1] = packetType;
  return b;
}

/** A minimal AVCDecoderConfigurationRecord (version 1, High profile, one SPS and one PPS). */
function avcSequenceHeader(): Buffer {
  const sps = Buffer.from([0x67, 0x64, 0x00, 0x1f, 0xac, 0xd9, 0x40, 0x50, 0x05, 0xbb, 0x01, 0x10]);
  const pps = Buffer.from([0x68, 0xeb, 0xe3, 0xcb, 0x22, 0xc0]);
  const record = Buffer.concat([
    Buffer.from([1, 0x64, 0x00, 0x1f, 0xff, 0xe1, sps.length >> 8, sps.length & 0xff]),
    sps,
    Buffer.from([1, pps.length >> 8, pps.length & 0xff]),
    pps,
  ]);
  const tag = avcTag(1, 0, record.length);
  record.copy(tag, 5);
  return tag;
}

/**
 * Sizes of the video frames: a large keyframe, then inter frames that vary
 * around a few KiB (some under and some over a 4096-byte chunk).
 */
function videoSize(i: number): number {
  if (i % GOP_FRAMES === 0) return 12_000;
  return 600 + (((i * 2654435761) >>> 0) % 5000);
}

/**
 * Runs the warm-up against `rtmp://127.0.0.1:port/app`: the publishers send one
 * message per event-loop turn between them (the server then reads them one at
 * a time, as it reads a real publisher), players joining along the way. Never throws:
 * a failure ends it early, and the report says why.
 */
export async function warmUp(port: number, app: string, options: WarmupOptions = {}): Promise<WarmupReport> {
  const players = options.players ?? 20;
  const messages = options.messages ?? 2000;
  const timeoutMs = options.timeoutMs ?? 5000;
  const aborted = options.aborted ?? ((): boolean => false);
  const t0 = Date.now();
  const url = `rtmp://127.0.0.1:${port}/${app}`;
  const clients: RtmpClient[] = [];
  let sent = 0;
  let joined = 0;
  let stopped: string | undefined;
  const timer = setTimeout(() => {
    stopped ??= `timed out after ${timeoutMs} ms`;
    for (const c of clients) c.destroy();
  }, timeoutMs);
  try {
    // several streams: code that has seen the callbacks of only one publisher or
    // one stream would be tied to those objects, and be thrown away when they die
    const pubs: { client: RtmpClient; sid: number; name: string; v: number; a: number }[] = [];
    for (let i = 0; i < STREAMS; i++) {
      const client = await RtmpClient.connect(url, { chunkSize: 4096, timeout: timeoutMs });
      clients.push(client);
      const name = `warmup-${i}`;
      const sid = await client.publish(name);
      client.sendMetadata(sid, { width: 1280, height: 720, framerate: 30, videocodecid: 7, audiocodecid: 10, audiosamplerate: 44100 });
      client.sendMedia(sid, MessageType.Video, 0, avcSequenceHeader());
      client.sendMedia(sid, MessageType.Audio, 0, Buffer.from([0xaf, 0x00, 0x12, 0x10]));
      pubs.push({ client, sid, name, v: 0, a: 0 });
    }
    // the frames are made once and sent many times, as a real publisher's bytes would be new each time
    const video = Array.from({ length: GOP_FRAMES }, (_, i) => avcTag(i === 0 ? 1 : 2, 1, videoSize(i)));
    const audio = aacTag(1, 360);
    // players join over the first half of the run, one every `every` messages, each stream in turn
    const every = Math.max(1, Math.floor(messages / 2 / Math.max(1, players)));
    const joins: Promise<void>[] = [];
    const playing: RtmpClient[] = [];
    const pubStop = Math.floor(messages * 0.2);
    const playersLeave = Math.floor(messages * 0.3);
    while (sent < messages && stopped === undefined) {
      if (aborted()) {
        stopped = 'the server is stopping';
        break;
      }
      const pub = pubs[sent % pubs.length]!;
      if (pub.client.closed) {
        stopped = 'a publisher was disconnected';
        break;
      }
      // audio and video interleaved by media time
      const vts = pub.v * VIDEO_FRAME_MS;
      const ats = pub.a * AUDIO_FRAME_MS;
      if (vts <= ats) {
        pub.client.sendMedia(pub.sid, MessageType.Video, vts, video[pub.v % GOP_FRAMES]!);
        pub.v++;
      } else {
        pub.client.sendMedia(pub.sid, MessageType.Audio, ats, audio);
        pub.a++;
      }
      sent++;
      if (sent === pubStop && pubs.length > 1) void pubs.pop()!.client.close();
      if (sent === playersLeave) for (let i = 0; i < playing.length; i += 4) void playing[i]!.close();
      if (joined < players && sent % every === 0) {
        const name = pubs[joined % pubs.length]!.name;
        joined++;
        joins.push(
          RtmpClient.connect(url, { timeout: timeoutMs, keepMediaBytes: 16 })
            .then(async (c) => {
              clients.push(c);
              await c.play(name);
              playing.push(c);
            })
            .catch((e: unknown) => {
              stopped ??= `a player failed: ${e instanceof Error ? e.message : String(e)}`;
            }),
        );
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    await Promise.all(joins);
  } catch (e) {
    stopped ??= e instanceof Error ? e.message : String(e);
  } finally {
    clearTimeout(timer);
    await Promise.all(clients.map((c) => c.close()));
  }
  return { players: joined, messages: sent, ms: Date.now() - t0, ...(stopped === undefined ? {} : { stopped }) };
}
