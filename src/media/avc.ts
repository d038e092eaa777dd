import { ByteReader } from '../core/bytes.js';
import { emptyArray } from '../core/queue.js';
import { ErrorCode, isServerError, serverError } from '../core/errors.js';
import { BitReader, removeEmulationPrevention } from './bits.js';

/**
 * H.264 / AVC: the AVCDecoderConfigurationRecord of ISO/IEC 14496-15 (5.3.3.1)
 * carried by an AVC sequence header, the sequence parameter set (ITU-T H.264
 * 7.3.2.1.1) for the picture size, and length-prefixed NAL unit splitting.
 */

export interface AvcConfig {
  profile: number;
  compatibility: number;
  level: number;
  /** bytes of each NAL unit length prefix: 1, 2, 3 or 4 */
  nalLengthSize: number;
  sps: Buffer[];
  pps: Buffer[];
  /** from the first SPS, when it parses */
  width?: number;
  height?: number;
  /** RFC 6381, e.g. 'avc1.64001f' */
  codecString: string;
}

export interface AvcSpsInfo {
  profile: number;
  level: number;
  width: number;
  height: number;
  /** chroma_format_idc: 0 monochrome, 1 4:2:0, 2 4:2:2, 3 4:4:4 */
  chroma: number;
}

export const AvcNalType = {
  Slice: 1,
  SliceIdr: 5,
  Sei: 6,
  Sps: 7,
  Pps: 8,
  AccessUnitDelimiter: 9,
  EndOfSequence: 10,
} as const;

const AVC_CONFIGURATION_VERSION = 1;
const NAL_TYPE_MASK = 0x1f;
const LENGTH_SIZE_MASK = 0x03;
const NUM_SPS_MASK = 0x1f;

/** profile_idc values whose SPS carries chroma_format_idc, bit depths and scaling lists. */
const HIGH_PROFILES: readonly number[] = [100, 110, 122, 244, 44, 83, 86, 118, 128, 138, 139, 134, 135];

const ChromaFormat = { Monochrome: 0, Yuv420: 1, Yuv422: 2, Yuv444: 3 } as const;
/** pic_order_cnt_type values. */
const PocType = { Lsb: 0, Cycle: 1 } as const;
/** Bound on num_ref_frames_in_pic_order_cnt_cycle (H.264 7.4.2.1.1: 0..255). */
const MAX_POC_CYCLE = 255;
const MACROBLOCK_SIZE = 16;
/** Scaling lists: six 4x4 then two (or six, for 4:4:4) 8x8. */
const SCALING_LISTS_4X4 = 6;
const SCALING_LIST_4X4_SIZE = 16;
const SCALING_LIST_8X8_SIZE = 64;

function hex2(n: number): string {
  return n.toString(16).padStart(2, '0');
}

/** Parses an AVCDecoderConfigurationRecord. Throws CodecConfigMalformed. NAL units are views. */
export function parseAvcDecoderConfig(buf: Buffer): AvcConfig {
  const r = new ByteReader(buf, 0, buf.length, ErrorCode.CodecConfigMalformed);
  const version = r.u8();
  if (version !== AVC_CONFIGURATION_VERSION) {
    throw serverError(ErrorCode.CodecConfigMalformed, `AVCDecoderConfigurationRecord version ${version}, expected ${AVC_CONFIGURATION_VERSION}`);
  }
  const profile = r.u8();
  const compatibility = r.u8();
  const level = r.u8();
  const nalLengthSize = (r.u8() & LENGTH_SIZE_MASK) + 1;
  const numSps = r.u8() & NUM_SPS_MASK;
  const sps: Buffer[] = [];
  for (let i = 0; i < numSps; i++) sps.push(r.bytes(r.u16()));
  const numPps = r.u8();
  const pps: Buffer[] = [];
  for (let i = 0; i < numPps; i++) pps.push(r.bytes(r.u16()));
  // High-profile records may continue with chroma_format / bit depth / SPS-ext; not needed here.

  const config: AvcConfig = {
    profile,
    compatibility,
    level,
    nalLengthSize,
    sps,
    pps,
    codecString: `avc1.${hex2(profile)}${hex2(compatibility)}${hex2(level)}`,
  };
  const first = sps[0];
  if (first !== undefined) {
    try {
      const info = parseAvcSps(first);
      config.width = info.width;
      config.height = info.height;
    } catch (e) {
      // The record is usable without the picture size; only a malformed SPS is tolerated.
      if (!isServerError(e)) throw e;
    }
  }
  return config;
}

function skipScalingList(r: BitReader, size: number): void {
  let last = 8;
  let next = 8;
  for (let j = 0; j < size; j++) {
    if (next !== 0) {
      const delta = r.se();
      next = (((last + delta) % 256) + 256) % 256;
    }
    last = next === 0 ? last : next;
  }
}

/** Parses an SPS NAL unit (with its 1-byte header) for profile, level, picture size and chroma format. Throws CodecConfigMalformed. */
export function parseAvcSps(sps: Buffer): AvcSpsInfo {
  const nalType = (sps[0] ?? 0) & NAL_TYPE_MASK;
  if (sps.length === 0 || nalType !== AvcNalType.Sps) {
    throw serverError(ErrorCode.CodecConfigMalformed, `not an SPS NAL unit (type ${nalType})`);
  }
  const r = new BitReader(removeEmulationPrevention(sps.subarray(1)), ErrorCode.CodecConfigMalformed);
  const profile = r.bits(8);
  r.skipBits(8); // constraint_set flags + reserved_zero_2bits
  const level = r.bits(8);
  r.ue(); // seq_parameter_set_id
  let chroma: number = ChromaFormat.Yuv420;
  let separateColourPlane = false;
  if (HIGH_PROFILES.includes(profile)) {
    chroma = r.ue();
    if (chroma > ChromaFormat.Yuv444) throw serverError(ErrorCode.CodecConfigMalformed, `SPS chroma_format_idc ${chroma}`);
    if (chroma === ChromaFormat.Yuv444) separateColourPlane = r.flag();
    r.ue(); // bit_depth_luma_minus8
    r.ue(); // bit_depth_chroma_minus8
    r.skipBits(1); // qpprime_y_zero_transform_bypass_flag
    if (r.flag()) {
      // seq_scaling_matrix_present_flag
      const lists = chroma !== ChromaFormat.Yuv444 ? 8 : 12;
      for (let i = 0; i < lists; i++) {
        if (r.flag()) skipScalingList(r, i < SCALING_LISTS_4X4 ? SCALING_LIST_4X4_SIZE : SCALING_LIST_8X8_SIZE);
      }
    }
  }
  r.ue(); // log2_max_frame_num_minus4
  const pocType = r.ue();
  if (pocType === PocType.Lsb) {
    r.ue(); // log2_max_pic_order_cnt_lsb_minus4
  } else if (pocType === PocType.Cycle) {
    r.skipBits(1); // delta_pic_order_always_zero_flag
    r.se(); // offset_for_non_ref_pic
    r.se(); // offset_for_top_to_bottom_field
    const cycle = r.ue();
    if (cycle > MAX_POC_CYCLE) throw serverError(ErrorCode.CodecConfigMalformed, `SPS num_ref_frames_in_pic_order_cnt_cycle ${cycle}`);
    for (let i = 0; i < cycle; i++) r.se();
  }
  r.ue(); // max_num_ref_frames
  r.skipBits(1); // gaps_in_frame_num_value_allowed_flag
  const widthMbs = r.ue() + 1;
  const heightMapUnits = r.ue() + 1;
  const frameMbsOnly = r.flag();
  if (!frameMbsOnly) r.skipBits(1); // mb_adaptive_frame_field_flag
  r.skipBits(1); // direct_8x8_inference_flag
  let cropLeft = 0;
  let cropRight = 0;
  let cropTop = 0;
  let cropBottom = 0;
  if (r.flag()) {
    cropLeft = r.ue();
    cropRight = r.ue();
    cropTop = r.ue();
    cropBottom = r.ue();
  }
  // H.264 7.4.2.1.1: crop units depend on ChromaArrayType and frame_mbs_only_flag
  const fieldFactor = frameMbsOnly ? 1 : 2;
  const chromaArrayType = separateColourPlane ? ChromaFormat.Monochrome : chroma;
  const subWidthC = chromaArrayType === ChromaFormat.Yuv420 || chromaArrayType === ChromaFormat.Yuv422 ? 2 : 1;
  const subHeightC = chromaArrayType === ChromaFormat.Yuv420 ? 2 : 1;
  const cropUnitX = chromaArrayType === ChromaFormat.Monochrome ? 1 : subWidthC;
  const cropUnitY = chromaArrayType === ChromaFormat.Monochrome ? fieldFactor : subHeightC * fieldFactor;
  const width = widthMbs * MACROBLOCK_SIZE - cropUnitX * (cropLeft + cropRight);
  const height = heightMapUnits * MACROBLOCK_SIZE * fieldFactor - cropUnitY * (cropTop + cropBottom);
  if (width <= 0 || height <= 0) {
    throw serverError(ErrorCode.CodecConfigMalformed, `SPS frame cropping leaves no picture (${width}x${height})`);
  }
  return { profile, level, width, height, chroma };
}

/**
 * Splits length-prefixed NAL units (AVCC/HVCC framing) into views. Zero-length
 * units are skipped. A length running past the end, or a leftover partial
 * prefix, is FlvMalformed. `out` (emptied first) lets a caller reuse an array.
 */
export function splitNalUnits(data: Buffer, nalLengthSize: number, out: Buffer[] = []): Buffer[] {
  if (!Number.isInteger(nalLengthSize) || nalLengthSize < 1 || nalLengthSize > 4) {
    throw serverError(ErrorCode.FlvMalformed, `bad NAL unit length size ${nalLengthSize}`);
  }
  const r = new ByteReader(data, 0, data.length, ErrorCode.FlvMalformed);
  emptyArray(out);
  while (r.remaining > 0) {
    r.require(nalLengthSize);
    const len = data.readUIntBE(r.pos, nalLengthSize);
    r.skip(nalLengthSize);
    if (len > r.remaining) {
      throw serverError(ErrorCode.FlvMalformed, `NAL unit length ${len} at offset ${r.pos - nalLengthSize} exceeds the ${r.remaining} bytes left`);
    }
    if (len > 0) out.push(r.bytes(len));
  }
  return out;
}
