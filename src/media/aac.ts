import { ErrorCode, serverError } from '../core/errors.js';
import { BitReader } from './bits.js';

/**
 * AAC: the AudioSpecificConfig of ISO/IEC 14496-3 (1.6.2.1), as carried in an
 * FLV/RTMP AAC sequence header, and the ADTS header (14496-3, 1.A.2.2) the
 * MPEG-TS muxer puts in front of each raw AAC frame.
 */

export interface AacConfig {
  /** audioObjectType: 2 = AAC-LC, 5 = SBR (HE-AAC), 29 = PS (HE-AAC v2), ... */
  objectType: number;
  /** samplingFrequencyIndex; 15 means the rate was given explicitly */
  sampleRateIndex: number;
  /** Hz (the core rate: for SBR/PS the output rate may be twice this) */
  sampleRate: number;
  /** channelConfiguration; 0 means defined in a program config element */
  channelConfig: number;
  /** RFC 6381 codec string, 'mp4a.40.<objectType>' */
  codecString: string;
}

export const AudioObjectType = { AacMain: 1, AacLc: 2, AacSsr: 3, AacLtp: 4, Sbr: 5, Ps: 29 } as const;

/** audioObjectType 31 escapes to 32 + a 6-bit value. */
const OBJECT_TYPE_ESCAPE = 31;
const OBJECT_TYPE_ESCAPE_BASE = 32;
/** samplingFrequencyIndex 15: a 24-bit samplingFrequency follows. */
export const EXPLICIT_SAMPLE_RATE_INDEX = 15;

/** samplingFrequencyIndex 0..12 (13 and 14 are reserved). */
export const AAC_SAMPLE_RATES: readonly number[] = Object.freeze([96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000, 7350]);

/** 'mp4a.40.x': 0x40 is the MPEG-4 Audio objectTypeIndication. */
const MP4A_PREFIX = 'mp4a.40.';

const ADTS_HEADER_SIZE = 7;
/** aac_frame_length is 13 bits and includes the header. */
const ADTS_MAX_FRAME_LENGTH = 0x1fff;
const ADTS_SYNCWORD = 0xfff;
/** adts_buffer_fullness 0x7FF: variable bit rate. */
const ADTS_BUFFER_FULLNESS_VBR = 0x7ff;
/** channel_configuration is 3 bits in ADTS. */
const ADTS_MAX_CHANNEL_CONFIG = 7;

function readObjectType(r: BitReader): number {
  const t = r.bits(5);
  return t === OBJECT_TYPE_ESCAPE ? OBJECT_TYPE_ESCAPE_BASE + r.bits(6) : t;
}

function readSampleRate(r: BitReader): { index: number; rate: number } {
  const index = r.bits(4);
  if (index === EXPLICIT_SAMPLE_RATE_INDEX) {
    const rate = r.bits(24);
    if (rate === 0) throw serverError(ErrorCode.CodecConfigMalformed, 'AudioSpecificConfig: explicit sampling frequency 0');
    return { index, rate };
  }
  const rate = AAC_SAMPLE_RATES[index];
  if (rate === undefined) throw serverError(ErrorCode.CodecConfigMalformed, `AudioSpecificConfig: reserved samplingFrequencyIndex ${index}`);
  return { index, rate };
}

/** Parses an AudioSpecificConfig (the data of an AAC sequence header). Throws CodecConfigMalformed. */
export function parseAudioSpecificConfig(buf: Buffer): AacConfig {
  const r = new BitReader(buf, ErrorCode.CodecConfigMalformed);
  const objectType = readObjectType(r);
  if (objectType === 0) throw serverError(ErrorCode.CodecConfigMalformed, 'AudioSpecificConfig: audioObjectType 0 (null)');
  const { index, rate } = readSampleRate(r);
  const channelConfig = r.bits(4);
  return {
    objectType,
    sampleRateIndex: index,
    sampleRate: rate,
    channelConfig,
    codecString: `${MP4A_PREFIX}${objectType}`,
  };
}

/** ADTS 'profile' is audioObjectType - 1 and only 2 bits wide; SBR/PS streams are signalled as AAC-LC (implicit SBR). */
function adtsProfile(objectType: number): number {
  switch (objectType) {
    case AudioObjectType.AacMain:
    case AudioObjectType.AacLc:
    case AudioObjectType.AacSsr:
    case AudioObjectType.AacLtp:
      return objectType - 1;
    case AudioObjectType.Sbr:
    case AudioObjectType.Ps:
      return AudioObjectType.AacLc - 1;
    default:
      throw serverError(ErrorCode.CodecConfigMalformed, `audioObjectType ${objectType} cannot be carried in ADTS`);
  }
}

function adtsSampleRateIndex(cfg: AacConfig): number {
  if (cfg.sampleRateIndex !== EXPLICIT_SAMPLE_RATE_INDEX) return cfg.sampleRateIndex;
  const i = AAC_SAMPLE_RATES.indexOf(cfg.sampleRate);
  if (i < 0) throw serverError(ErrorCode.CodecConfigMalformed, `sampling frequency ${cfg.sampleRate} Hz has no ADTS index`);
  return i;
}

/**
 * The 7-byte ADTS header (MPEG-4, no CRC) for one raw AAC frame of
 * `frameLength` bytes. Throws CodecConfigMalformed when the config cannot be
 * expressed in ADTS and FlvMalformed when the frame is too large for it.
 */
export function adtsHeader(cfg: AacConfig, frameLength: number): Buffer {
  const profile = adtsProfile(cfg.objectType);
  const sfi = adtsSampleRateIndex(cfg);
  if (cfg.channelConfig > ADTS_MAX_CHANNEL_CONFIG) {
    throw serverError(ErrorCode.CodecConfigMalformed, `channelConfiguration ${cfg.channelConfig} cannot be carried in ADTS`);
  }
  const total = frameLength + ADTS_HEADER_SIZE;
  if (!Number.isInteger(frameLength) || frameLength < 0 || total > ADTS_MAX_FRAME_LENGTH) {
    throw serverError(ErrorCode.FlvMalformed, `AAC frame of ${frameLength} bytes does not fit an ADTS frame`);
  }
  const ch = cfg.channelConfig;
  // syncword(12) ID=0(1) layer=00(2) protection_absent=1(1)
  // profile(2) sfi(4) private(1) channel_configuration(3) original(1) home(1)
  // copyright_id_bit(1) copyright_id_start(1) aac_frame_length(13) adts_buffer_fullness(11) raw_data_blocks-1(2)
  // one per AAC frame muxed to HLS: written in place, without a writer object
  const h = Buffer.allocUnsafe(ADTS_HEADER_SIZE);
  h[0] = ADTS_SYNCWORD >> 4;
  h[1] = ((ADTS_SYNCWORD & 0x0f) << 4) | 0x01;
  h[2] = (profile << 6) | (sfi << 2) | (ch >> 2);
  h[3] = ((ch & 0x03) << 6) | (total >> 11);
  h[4] = (total >> 3) & 0xff;
  h[5] = ((total & 0x07) << 5) | (ADTS_BUFFER_FULLNESS_VBR >> 6);
  h[6] = (ADTS_BUFFER_FULLNESS_VBR & 0x3f) << 2;
  return h;
}
