import { ByteReader } from '../core/bytes.js';
import { ErrorCode, serverError } from '../core/errors.js';

/**
 * H.265 / HEVC: the HEVCDecoderConfigurationRecord of ISO/IEC 14496-15
 * (8.3.3.1) carried by an HEVC sequence header (Enhanced RTMP 'hvc1'
 * SequenceStart, or legacy codec id 12), and its RFC 6381 codec string
 * (14496-15 Annex E).
 */

export interface HevcConfig {
  profileSpace: number;
  tierFlag: number;
  profileIdc: number;
  levelIdc: number;
  /** general_profile_compatibility_flags, 32 bits as read (bit 31 = flag 0) */
  profileCompatibilityFlags: number;
  /** the 6 bytes of general_constraint_indicator_flags (a view) */
  constraintIndicatorFlags: Buffer;
  /** chroma_format_idc */
  chromaFormat: number;
  bitDepthLuma: number;
  bitDepthChroma: number;
  /** bytes of each NAL unit length prefix: 1, 2, 3 or 4 */
  nalLengthSize: number;
  /** parameter set arrays by NAL unit type (HevcNalType); NAL units are views */
  arrays: { type: number; nalus: Buffer[] }[];
  /** e.g. 'hvc1.1.6.L93.B0' */
  codecString: string;
}

export const HevcNalType = {
  Vps: 32,
  Sps: 33,
  Pps: 34,
  AccessUnitDelimiter: 35,
  EndOfSequence: 36,
  PrefixSei: 39,
  SuffixSei: 40,
} as const;

const HEVC_CONFIGURATION_VERSION = 1;
const CONSTRAINT_FLAGS_SIZE = 6;
const NAL_TYPE_MASK = 0x3f;
const LENGTH_SIZE_MASK = 0x03;
/** general_profile_space 1..3 prefix the profile in the codec string. */
const PROFILE_SPACE_LETTERS = ['', 'A', 'B', 'C'] as const;

/** The 32 compatibility flags in reverse bit order (flag 0 becomes bit 0), as Annex E wants them. */
function reverseBits32(v: number): number {
  let out = 0;
  for (let i = 0; i < 32; i++) out = out * 2 + ((v >>> i) & 1);
  return out;
}

function hevcCodecString(profileSpace: number, tierFlag: number, profileIdc: number, compat: number, levelIdc: number, constraints: Buffer): string {
  const parts = [
    `hvc1`,
    `${PROFILE_SPACE_LETTERS[profileSpace] ?? ''}${profileIdc}`,
    reverseBits32(compat).toString(16).toUpperCase(),
    `${tierFlag ? 'H' : 'L'}${levelIdc}`,
  ];
  let last = constraints.length;
  while (last > 0 && constraints[last - 1] === 0) last--;
  for (let i = 0; i < last; i++) parts.push(constraints[i]!.toString(16).toUpperCase().padStart(2, '0'));
  return parts.join('.');
}

/** Parses an HEVCDecoderConfigurationRecord. Throws CodecConfigMalformed. NAL units are views. */
export function parseHevcDecoderConfig(buf: Buffer): HevcConfig {
  const r = new ByteReader(buf, 0, buf.length, ErrorCode.CodecConfigMalformed);
  const version = r.u8();
  if (version !== HEVC_CONFIGURATION_VERSION) {
    throw serverError(ErrorCode.CodecConfigMalformed, `HEVCDecoderConfigurationRecord version ${version}, expected ${HEVC_CONFIGURATION_VERSION}`);
  }
  const b1 = r.u8();
  const profileSpace = b1 >> 6;
  const tierFlag = (b1 >> 5) & 0x01;
  const profileIdc = b1 & 0x1f;
  const profileCompatibilityFlags = r.u32();
  const constraintIndicatorFlags = r.bytes(CONSTRAINT_FLAGS_SIZE);
  const levelIdc = r.u8();
  r.u16(); // reserved(4) min_spatial_segmentation_idc(12)
  r.u8(); // reserved(6) parallelismType(2)
  const chromaFormat = r.u8() & 0x03;
  const bitDepthLuma = (r.u8() & 0x07) + 8;
  const bitDepthChroma = (r.u8() & 0x07) + 8;
  r.u16(); // avgFrameRate
  const nalLengthSize = (r.u8() & LENGTH_SIZE_MASK) + 1; // constantFrameRate(2) numTemporalLayers(3) temporalIdNested(1) lengthSizeMinusOne(2)
  const numArrays = r.u8();
  const arrays: { type: number; nalus: Buffer[] }[] = [];
  for (let i = 0; i < numArrays; i++) {
    const type = r.u8() & NAL_TYPE_MASK; // array_completeness(1) reserved(1) NAL_unit_type(6)
    const numNalus = r.u16();
    const nalus: Buffer[] = [];
    for (let j = 0; j < numNalus; j++) nalus.push(r.bytes(r.u16()));
    arrays.push({ type, nalus });
  }
  return {
    profileSpace,
    tierFlag,
    profileIdc,
    levelIdc,
    profileCompatibilityFlags,
    constraintIndicatorFlags,
    chromaFormat,
    bitDepthLuma,
    bitDepthChroma,
    nalLengthSize,
    arrays,
    codecString: hevcCodecString(profileSpace, tierFlag, profileIdc, profileCompatibilityFlags, levelIdc, constraintIndicatorFlags),
  };
}
