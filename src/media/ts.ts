import { ErrorCode, serverError } from '../core/errors.js';
import type { AacConfig } from './aac.js';
import { adtsHeader } from './aac.js';
import type { AvcConfig } from './avc.js';
import { AvcNalType, splitNalUnits } from './avc.js';
import type { HevcConfig } from './hevc.js';
import { HevcNalType } from './hevc.js';

/**
 * MPEG-TS (ISO/IEC 13818-1) for HLS: PAT and PMT with their CRC32, PES packets
 * for H.264/H.265 (Annex-B with an access unit delimiter, parameter sets before
 * each keyframe) and AAC (ADTS) / MP3, a PCR on the PCR PID, continuity
 * counters and adaptation-field stuffing, in 188-byte packets. Pure functions
 * over bytes; a PES is written into one buffer allocated at its final size.
 */

export const TS_PACKET_SIZE = 188;
const TS_HEADER_SIZE = 4;
const TS_PAYLOAD_SIZE = TS_PACKET_SIZE - TS_HEADER_SIZE;
export const TS_SYNC_BYTE = 0x47;

/** The PIDs we use (those of nginx-rtmp's muxer, which players know). */
export const TsPid = { Pat: 0x0000, Pmt: 0x1000, Video: 0x0100, Audio: 0x0101 } as const;

/** stream_type values of the PMT (13818-1 table 2-34, and H.222 amendments). */
export const TsStreamType = { Mpeg1Audio: 0x03, Aac: 0x0f, H264: 0x1b, H265: 0x24 } as const;
export type TsStreamType = (typeof TsStreamType)[keyof typeof TsStreamType];

/** PES stream_id: the first video and audio streams. */
const PesStreamId = { Video: 0xe0, Audio: 0xc0 } as const;

const TableId = { Pat: 0x00, Pmt: 0x02 } as const;
const PROGRAM_NUMBER = 1;
const TRANSPORT_STREAM_ID = 1;

/** TS header bits. */
const PAYLOAD_UNIT_START = 0x40;
const AdaptationControl = { PayloadOnly: 0x10, AdaptationAndPayload: 0x30 } as const;
/** adaptation field flags */
const AfFlag = { RandomAccess: 0x40, Pcr: 0x10 } as const;
/** adaptation_field_length byte + flags byte + 6 bytes of PCR */
const AF_PCR_SIZE = 8;
const STUFFING = 0xff;

/** PES header: start code (3) + stream id (1) + length (2) + flags (2) + header length (1). */
const PES_FIXED_HEADER = 9;
const PES_TIMESTAMP_SIZE = 5;
const PtsDtsFlags = { Pts: 0x80, PtsDts: 0xc0 } as const;
/** '0010' / '0011' / '0001' prefixes of the PTS and DTS fields */
const TimestampPrefix = { PtsOnly: 0x2, Pts: 0x3, Dts: 0x1 } as const;
/** PES flags byte 1: '10' marker bits, data_alignment_indicator */
const PES_FLAGS1 = 0x80 | 0x04;
const MAX_PES_PACKET_LENGTH = 0xffff;

/** 90 kHz clock ticks per millisecond. */
export const TS_CLOCK_PER_MS = 90;
const TIMESTAMP_MODULO = 2 ** 33;

const START_CODE = Buffer.from([0, 0, 0, 1]);
/** AUD NAL units: H.264 primary_pic_type 7 (any); H.265 type 35, layer 0, tid 1, pic_type 2 */
const AVC_AUD = Buffer.from([0, 0, 0, 1, AvcNalType.AccessUnitDelimiter, 0xf0]);
const HEVC_AUD = Buffer.from([0, 0, 0, 1, HevcNalType.AccessUnitDelimiter << 1, 0x01, 0x50]);
const AVC_NAL_TYPE_MASK = 0x1f;
const HEVC_NAL_TYPE_SHIFT = 1;
const HEVC_NAL_TYPE_MASK = 0x3f;

// ---------------------------------------------------------------- CRC32 (MPEG-2)

const CRC_POLY = 0x04c11db7;
const CRC_TABLE = ((): Uint32Array => {
  const t = new Uint32Array(256);
  for (let i = 0; i < 256; i++) {
    let c = i << 24;
    for (let k = 0; k < 8; k++) c = c & 0x80000000 ? (c << 1) ^ CRC_POLY : c << 1;
    t[i] = c >>> 0;
  }
  return t;
})();

/** CRC-32/MPEG-2 (no reflection, init 0xFFFFFFFF, no final xor) of buf[start, end). */
export function crc32Mpeg2(buf: Uint8Array, start = 0, end = buf.length): number {
  let crc = 0xffffffff;
  for (let i = start; i < end; i++) crc = ((crc << 8) ^ CRC_TABLE[((crc >>> 24) ^ buf[i]!) & 0xff]!) >>> 0;
  return crc >>> 0;
}

// ---------------------------------------------------------------- the muxer

export interface TsTracks {
  readonly video?: TsStreamType;
  readonly audio?: TsStreamType;
}

/** One elementary stream unit to put in a PES. */
export interface PesInput {
  readonly pid: number;
  /** 90 kHz, already offset (non-negative) */
  readonly pts: number;
  /** 90 kHz; omit when equal to pts */
  readonly dts?: number;
  /** a PCR (27 MHz base in 90 kHz units) in the first packet */
  readonly pcr?: number;
  /** random_access_indicator (a keyframe) */
  readonly randomAccess: boolean;
  /** the elementary stream bytes, in order (written without concatenation) */
  readonly chunks: readonly Buffer[];
}

function tsTimestamp(buf: Buffer, at: number, prefix: number, ts: number): void {
  const t = ts % TIMESTAMP_MODULO;
  const high = Math.floor(t / 2 ** 30); // bits 32..30
  const mid = Math.floor(t / 2 ** 15) & 0x7fff; // bits 29..15
  const low = t & 0x7fff; // bits 14..0
  buf[at] = (prefix << 4) | (high << 1) | 1;
  buf[at + 1] = mid >> 7;
  buf[at + 2] = ((mid & 0x7f) << 1) | 1;
  buf[at + 3] = low >> 7;
  buf[at + 4] = ((low & 0x7f) << 1) | 1;
}

/**
 * A transport stream writer with its own continuity counters. `tables()` gives
 * the PAT and PMT (at the head of every fragment), `pes()` one PES packet.
 */
export class TsMuxer {
  private readonly cc = new Map<number, number>();
  readonly pcrPid: number;

  constructor(readonly tracks: TsTracks) {
    if (tracks.video === undefined && tracks.audio === undefined) throw new Error('assert: a transport stream needs a track');
    this.pcrPid = tracks.video !== undefined ? TsPid.Video : TsPid.Audio;
  }

  private nextCc(pid: number): number {
    const c = this.cc.get(pid) ?? 0;
    this.cc.set(pid, (c + 1) & 0x0f);
    return c;
  }

  /** The PAT and the PMT, two packets. */
  tables(): Buffer {
    const out = Buffer.alloc(2 * TS_PACKET_SIZE, STUFFING);
    this.section(out, 0, TsPid.Pat, this.patSection());
    this.section(out, TS_PACKET_SIZE, TsPid.Pmt, this.pmtSection());
    return out;
  }

  private section(out: Buffer, at: number, pid: number, section: Buffer): void {
    out[at] = TS_SYNC_BYTE;
    out[at + 1] = PAYLOAD_UNIT_START | (pid >> 8);
    out[at + 2] = pid & 0xff;
    out[at + 3] = AdaptationControl.PayloadOnly | this.nextCc(pid);
    out[at + 4] = 0; // pointer_field
    section.copy(out, at + 5);
  }

  /** table_id, section length, the body, CRC32 */
  private static psi(tableId: number, idExt: number, body: Buffer): Buffer {
    // header after section_length: id ext (2) + version/current (1) + section numbers (2) = 5, then body, then CRC (4)
    const sectionLength = 5 + body.length + 4;
    const s = Buffer.alloc(3 + sectionLength);
    s[0] = tableId;
    s.writeUInt16BE(0xb000 | sectionLength, 1); // section_syntax_indicator, '0', reserved '11'
    s.writeUInt16BE(idExt, 3);
    s[5] = 0xc1; // reserved '11', version 0, current_next 1
    s[6] = 0; // section_number
    s[7] = 0; // last_section_number
    body.copy(s, 8);
    s.writeUInt32BE(crc32Mpeg2(s, 0, s.length - 4), s.length - 4);
    return s;
  }

  private patSection(): Buffer {
    const body = Buffer.alloc(4);
    body.writeUInt16BE(PROGRAM_NUMBER, 0);
    body.writeUInt16BE(0xe000 | TsPid.Pmt, 2);
    return TsMuxer.psi(TableId.Pat, TRANSPORT_STREAM_ID, body);
  }

  private pmtSection(): Buffer {
    const streams: [number, number][] = [];
    if (this.tracks.video !== undefined) streams.push([this.tracks.video, TsPid.Video]);
    if (this.tracks.audio !== undefined) streams.push([this.tracks.audio, TsPid.Audio]);
    const body = Buffer.alloc(4 + 5 * streams.length);
    body.writeUInt16BE(0xe000 | this.pcrPid, 0);
    body.writeUInt16BE(0xf000, 2); // program_info_length 0
    streams.forEach(([type, pid], i) => {
      const at = 4 + 5 * i;
      body[at] = type;
      body.writeUInt16BE(0xe000 | pid, at + 1);
      body.writeUInt16BE(0xf000, at + 3); // ES_info_length 0
    });
    return TsMuxer.psi(TableId.Pmt, PROGRAM_NUMBER, body);
  }

  /** One PES packet cut into TS packets, in one buffer of its final size. */
  pes(p: PesInput): Buffer {
    const video = p.pid === TsPid.Video;
    const hasDts = p.dts !== undefined && p.dts !== p.pts;
    const pesHeaderData = hasDts ? 2 * PES_TIMESTAMP_SIZE : PES_TIMESTAMP_SIZE;
    let dataLength = 0;
    for (const c of p.chunks) dataLength += c.length;
    const pesLength = PES_FIXED_HEADER + pesHeaderData + dataLength;
    const firstAf = p.pcr !== undefined ? AF_PCR_SIZE : p.randomAccess ? 2 : 0;
    const firstCapacity = TS_PAYLOAD_SIZE - firstAf;
    const packets = pesLength <= firstCapacity ? 1 : 1 + Math.ceil((pesLength - firstCapacity) / TS_PAYLOAD_SIZE);
    const out = Buffer.allocUnsafe(packets * TS_PACKET_SIZE);

    // the PES header, written into the first packet's payload below
    const head = Buffer.allocUnsafe(PES_FIXED_HEADER + pesHeaderData);
    head[0] = 0;
    head[1] = 0;
    head[2] = 1;
    head[3] = video ? PesStreamId.Video : PesStreamId.Audio;
    const declared = pesLength - 6;
    head.writeUInt16BE(video || declared > MAX_PES_PACKET_LENGTH ? 0 : declared, 4);
    head[6] = PES_FLAGS1;
    head[7] = hasDts ? PtsDtsFlags.PtsDts : PtsDtsFlags.Pts;
    head[8] = pesHeaderData;
    tsTimestamp(head, 9, hasDts ? TimestampPrefix.Pts : TimestampPrefix.PtsOnly, p.pts);
    if (hasDts) tsTimestamp(head, 14, TimestampPrefix.Dts, p.dts!);

    let chunk = -1;
    let src: Buffer = head;
    let srcPos = 0;
    let remaining = pesLength;
    for (let k = 0; k < packets; k++) {
      const at = k * TS_PACKET_SIZE;
      out[at] = TS_SYNC_BYTE;
      out[at + 1] = (k === 0 ? PAYLOAD_UNIT_START : 0) | (p.pid >> 8);
      out[at + 2] = p.pid & 0xff;
      const afBase = k === 0 ? firstAf : 0;
      const capacity = TS_PAYLOAD_SIZE - afBase;
      const take = Math.min(capacity, remaining);
      const stuffing = capacity - take;
      const afTotal = afBase + stuffing; // bytes of adaptation field incl. its length byte
      out[at + 3] = (afTotal > 0 ? AdaptationControl.AdaptationAndPayload : AdaptationControl.PayloadOnly) | this.nextCc(p.pid);
      let w = at + TS_HEADER_SIZE;
      if (afTotal > 0) {
        out[w] = afTotal - 1; // adaptation_field_length
        if (afTotal > 1) {
          let flags = 0;
          if (k === 0 && p.randomAccess) flags |= AfFlag.RandomAccess;
          if (k === 0 && p.pcr !== undefined) flags |= AfFlag.Pcr;
          out[w + 1] = flags;
          let f = w + 2;
          if (k === 0 && p.pcr !== undefined) {
            const base = p.pcr % TIMESTAMP_MODULO;
            // 33-bit base, 6 reserved bits, 9-bit extension (0)
            out.writeUInt32BE(Math.floor(base / 2), f);
            out[f + 4] = ((base & 1) << 7) | 0x7e;
            out[f + 5] = 0;
            f += 6;
          }
          out.fill(STUFFING, f, w + afTotal);
        }
        w += afTotal;
      }
      // payload: `take` bytes from the header then the chunks
      let need = take;
      while (need > 0) {
        if (srcPos === src.length) {
          chunk++;
          const next = p.chunks[chunk];
          if (next === undefined) throw new Error('assert: PES length accounting');
          src = next;
          srcPos = 0;
          continue;
        }
        const n = Math.min(need, src.length - srcPos);
        src.copy(out, w, srcPos, srcPos + n);
        w += n;
        srcPos += n;
        need -= n;
      }
      remaining -= take;
    }
    return out;
  }
}

// ---------------------------------------------------------------- elementary streams

/**
 * An H.264 access unit from AVCC (length-prefixed) to Annex-B chunks: an AUD
 * first (a publisher's own AUD is dropped), the avcC's SPS/PPS before a
 * keyframe that does not carry its own. Chunks are views of `data`.
 */
export function avcAnnexB(data: Buffer, cfg: AvcConfig | undefined, keyframe: boolean): Buffer[] {
  const nals = splitNalUnits(data, cfg?.nalLengthSize ?? 4);
  const out: Buffer[] = [AVC_AUD];
  let hasSps = false;
  for (const n of nals) if ((n[0]! & AVC_NAL_TYPE_MASK) === AvcNalType.Sps) hasSps = true;
  if (keyframe && !hasSps && cfg !== undefined) {
    for (const s of cfg.sps) out.push(START_CODE, s);
    for (const s of cfg.pps) out.push(START_CODE, s);
  }
  for (const n of nals) {
    if ((n[0]! & AVC_NAL_TYPE_MASK) === AvcNalType.AccessUnitDelimiter) continue;
    out.push(START_CODE, n);
  }
  return out;
}

/** The same for H.265: AUD, VPS/SPS/PPS of the hvcC before a keyframe that lacks them. */
export function hevcAnnexB(data: Buffer, cfg: HevcConfig | undefined, keyframe: boolean): Buffer[] {
  const nals = splitNalUnits(data, cfg?.nalLengthSize ?? 4);
  const type = (n: Buffer): number => (n[0]! >> HEVC_NAL_TYPE_SHIFT) & HEVC_NAL_TYPE_MASK;
  const out: Buffer[] = [HEVC_AUD];
  const hasParams = nals.some((n) => type(n) === HevcNalType.Sps);
  if (keyframe && !hasParams && cfg !== undefined) {
    for (const a of cfg.arrays) {
      if (a.type !== HevcNalType.Vps && a.type !== HevcNalType.Sps && a.type !== HevcNalType.Pps) continue;
      for (const n of a.nalus) out.push(START_CODE, n);
    }
  }
  for (const n of nals) {
    if (type(n) === HevcNalType.AccessUnitDelimiter) continue;
    out.push(START_CODE, n);
  }
  return out;
}

/** A raw AAC frame with its ADTS header (two chunks). Throws CodecConfigMalformed / FlvMalformed. */
export function aacAdts(data: Buffer, cfg: AacConfig): Buffer[] {
  if (data.length === 0) throw serverError(ErrorCode.FlvMalformed, 'empty AAC frame');
  return [adtsHeader(cfg, data.length), data];
}
