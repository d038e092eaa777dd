import { RtmpClient } from '../../src/rtmp/client.js';
import { MessageType, type RtmpMessage } from '../../src/rtmp/messages.js';

export const AVC_HEADER = Buffer.from([0x17, 0x00, 0, 0, 0, 0x01, 0x64, 0x00, 0x1f, 0xff, 0xe1, 0x00, 0x04, 0x67, 0x64, 0x00, 0x1f, 0x01, 0x00, 0x04, 0x68, 0xee, 0x3c, 0x80]);
export const AAC_HEADER = Buffer.from([0xaf, 0x00, 0x12, 0x10]);

export function videoFrame(keyframe: boolean, size: number, seq: number): Buffer {
  const b = Buffer.alloc(size, seq & 0xff);
  b[0] = keyframe ? 0x17 : 0x27;
  b[1] = 0x01;
  b[2] = b[3] = b[4] = 0;
  return b;
}

export function audioFrame(seq: number): Buffer {
  const b = Buffer.alloc(200, seq & 0xff);
  b[0] = 0xaf;
  b[1] = 0x01;
  return b;
}

export interface SyntheticPublisher {
  readonly client: RtmpClient;
  framesSent: number;
  stop(): Promise<void>;
}

/** Publishes synthetic H.264/AAC-shaped frames in real time (fps, keyframe every gop frames). */
export async function publishSynthetic(
  url: string,
  name: string,
  opts: { fps?: number; gop?: number; frameSize?: number; startTs?: number } = {},
): Promise<SyntheticPublisher> {
  const fps = opts.fps ?? 25;
  const gop = opts.gop ?? fps;
  const frameSize = opts.frameSize ?? 5000;
  const client = await RtmpClient.connect(url);
  const id = await client.publish(name);
  client.sendMetadata(id, { width: 320, height: 240, framerate: fps, videocodecid: 7, audiocodecid: 10 });
  client.sendMedia(id, MessageType.Video, 0, AVC_HEADER);
  client.sendMedia(id, MessageType.Audio, 0, AAC_HEADER);
  const pub: SyntheticPublisher = {
    client,
    framesSent: 0,
    stop: async () => {
      clearInterval(timer);
      await client.close();
    },
  };
  const t0 = Date.now();
  const base = opts.startTs ?? 0;
  const timer = setInterval(() => {
    const due = Math.floor(((Date.now() - t0) * fps) / 1000);
    while (pub.framesSent <= due && !client.closed) {
      const n = pub.framesSent++;
      const ts = base + Math.round((n * 1000) / fps);
      client.sendMedia(id, MessageType.Video, ts, videoFrame(n % gop === 0, frameSize, n));
      client.sendMedia(id, MessageType.Audio, ts, audioFrame(n));
    }
  }, 10);
  return pub;
}

export interface CountingPlayer {
  readonly client: RtmpClient;
  video: number;
  audio: number;
  data: number;
  keyframes: number;
  /** video timestamps that went backwards */
  backwards: number;
  firstVideoKeyframe: boolean | undefined;
  lastVideoTs: number;
  messages: RtmpMessage[];
}

/** Plays a stream with our client, counting what arrives. */
export async function playCounting(url: string, name: string, keep = false): Promise<CountingPlayer> {
  const client = await RtmpClient.connect(url);
  const p: CountingPlayer = { client, video: 0, audio: 0, data: 0, keyframes: 0, backwards: 0, firstVideoKeyframe: undefined, lastVideoTs: -1, messages: [] };
  client.onMedia = (m) => {
    if (keep) p.messages.push(m);
    if (m.type === MessageType.Video) {
      if ((m.payload[1] ?? 0) === 0) return; // sequence header
      const key = (m.payload[0]! >> 4) === 1;
      if (p.firstVideoKeyframe === undefined) p.firstVideoKeyframe = key;
      p.video++;
      if (key) p.keyframes++;
      if (m.timestamp < p.lastVideoTs) p.backwards++;
      p.lastVideoTs = m.timestamp;
    } else if (m.type === MessageType.Audio) p.audio++;
    else p.data++;
  };
  await client.play(name);
  return p;
}
