import { ByteReader } from '../../src/core/bytes.js';
import { runFfprobe } from './ffmpeg.js';

/**
 * An ISO BMFF box reader of our own for the tests (independent of the writer
 * in src/media/fmp4.ts), the fragment facts the DASH tests check, and ffprobe.
 */

export interface Box {
  type: string;
  /** offset of the box's first byte in the buffer given to readBoxes */
  offset: number;
  size: number;
  /** the payload (after the header): a view */
  body: Buffer;
  children: Box[];
}

/** Boxes that hold only boxes (and the sample entry holders we descend into). */
const CONTAINERS = new Set(['moov', 'trak', 'mdia', 'minf', 'stbl', 'dinf', 'mvex', 'moof', 'traf', 'edts']);

/** Reads boxes from buf[start, end); throws on a box that overruns its parent or is smaller than its header. */
export function readBoxes(buf: Buffer, start = 0, end = buf.length): Box[] {
  const out: Box[] = [];
  let pos = start;
  while (pos < end) {
    if (end - pos < 8) throw new Error(`truncated box header at ${pos}`);
    let size = buf.readUInt32BE(pos);
    const type = buf.toString('latin1', pos + 4, pos + 8);
    let header = 8;
    if (size === 1) {
      if (end - pos < 16) throw new Error(`truncated largesize at ${pos}`);
      size = Number(buf.readBigUInt64BE(pos + 8));
      header = 16;
    } else if (size === 0) size = end - pos;
    if (size < header || pos + size > end) throw new Error(`box ${type} at ${pos} has size ${size}, ${end - pos} bytes left`);
    const body = buf.subarray(pos + header, pos + size);
    const children = CONTAINERS.has(type) ? readBoxes(buf, pos + header, pos + size) : [];
    out.push({ type, offset: pos, size, body, children });
    pos += size;
  }
  return out;
}

export function find(boxes: readonly Box[], path: string): Box | undefined {
  const [head, ...rest] = path.split('/');
  for (const b of boxes) {
    if (b.type !== head) continue;
    if (rest.length === 0) return b;
    const r = find(b.children, rest.join('/'));
    if (r !== undefined) return r;
  }
  return undefined;
}

export function findAll(boxes: readonly Box[], type: string): Box[] {
  const out: Box[] = [];
  for (const b of boxes) {
    if (b.type === type) out.push(b);
    out.push(...findAll(b.children, type));
  }
  return out;
}

export interface TrunSample {
  duration: number;
  size: number;
  flags: number;
  cts: number;
}

export interface TrafInfo {
  trackId: number;
  baseDecodeTime: number;
  dataOffset: number;
  samples: TrunSample[];
}

const SAMPLE_IS_NON_SYNC = 0x00010000;

export function isSyncFlags(flags: number): boolean {
  return (flags & SAMPLE_IS_NON_SYNC) === 0;
}

/** The tfhd/tfdt/trun facts of each traf of a fragment (default sample values from tfhd are not supported: our writer puts all in trun). */
export function readFragment(buf: Buffer): { sequence: number; trafs: TrafInfo[]; mdat: Box; moof: Box } {
  const boxes = readBoxes(buf);
  const moof = find(boxes, 'moof');
  const mdat = find(boxes, 'mdat');
  if (moof === undefined || mdat === undefined) throw new Error(`no moof/mdat in [${boxes.map((b) => b.type).join(',')}]`);
  const mfhd = find(moof.children, 'mfhd');
  if (mfhd === undefined) throw new Error('no mfhd');
  const sequence = mfhd.body.readUInt32BE(4);
  const trafs: TrafInfo[] = [];
  for (const traf of moof.children.filter((b) => b.type === 'traf')) {
    const tfhd = find(traf.children, 'tfhd');
    const tfdt = find(traf.children, 'tfdt');
    const trun = find(traf.children, 'trun');
    if (tfhd === undefined || tfdt === undefined || trun === undefined) throw new Error('traf without tfhd/tfdt/trun');
    const trackId = tfhd.body.readUInt32BE(4);
    const tr = new ByteReader(tfdt.body);
    const version = tr.u8();
    tr.skip(3);
    const baseDecodeTime = version === 1 ? tr.u32() * 0x100000000 + tr.u32() : tr.u32();
    const r = new ByteReader(trun.body);
    const trunVersion = r.u8();
    const flags = r.u24();
    const count = r.u32();
    const dataOffset = flags & 0x1 ? r.u32() : 0;
    const firstFlags = flags & 0x4 ? r.u32() : undefined;
    const samples: TrunSample[] = [];
    for (let i = 0; i < count; i++) {
      const duration = flags & 0x100 ? r.u32() : 0;
      const size = flags & 0x200 ? r.u32() : 0;
      const sflags = flags & 0x400 ? r.u32() : i === 0 && firstFlags !== undefined ? firstFlags : 0;
      let cts = 0;
      if (flags & 0x800) {
        const v = r.u32();
        cts = trunVersion === 1 ? v | 0 : v;
      }
      samples.push({ duration, size, flags: sflags, cts });
    }
    if (r.remaining !== 0) throw new Error(`trun has ${r.remaining} trailing bytes`);
    trafs.push({ trackId, baseDecodeTime, dataOffset, samples });
  }
  return { sequence, trafs, mdat, moof };
}

export interface ProbeStream {
  codec_type?: string;
  codec_name?: string;
  width?: number;
  height?: number;
  sample_rate?: string;
  channels?: number;
}

/** `ffprobe -show_streams -show_format` as JSON (extra arguments before the input). */
export async function ffprobe(input: string, extra: readonly string[] = [], timeoutMs = 30_000): Promise<{ code: number | null; streams: ProbeStream[]; format: Record<string, unknown>; stderr: string }> {
  const { code, out, err } = await runFfprobe(['-hide_banner', '-v', 'error', '-of', 'json', '-show_streams', '-show_format', ...extra, input], timeoutMs);
  let parsed: { streams?: ProbeStream[]; format?: Record<string, unknown> } = {};
  try {
    parsed = JSON.parse(out === '' ? '{}' : out) as typeof parsed;
  } catch {
    // leave empty: the caller asserts on streams
  }
  return { code, streams: parsed.streams ?? [], format: parsed.format ?? {}, stderr: err };
}
