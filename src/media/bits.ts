import { ErrorCode, serverError, type ErrorCode as Code } from '../core/errors.js';

/**
 * Bit-level reading for codec parameter sets (H.264 / H.265 SPS): an MSB-first
 * bit reader with the exp-Golomb codes ue(v) / se(v) of ITU-T H.264 clause 9.1,
 * and removal of the emulation-prevention bytes that turn a NAL unit into its
 * RBSP (H.264 clause 7.4.1).
 */

/** Longest exp-Golomb prefix accepted: enough for any 32-bit ue(v) value. */
const MAX_EXP_GOLOMB_LEADING_ZEROS = 31;

/** The byte H.264/H.265 encoders insert after `00 00` so the payload cannot mimic a start code. */
const EMULATION_PREVENTION_BYTE = 0x03;

/**
 * The RBSP of a NAL unit: `00 00 03` becomes `00 00`. Returns the input itself
 * (no copy) when it holds no emulation-prevention byte, else one new buffer.
 */
export function removeEmulationPrevention(nal: Buffer): Buffer {
  const first = findEmulationPrevention(nal, 0);
  if (first < 0) return nal;
  const out = Buffer.allocUnsafe(nal.length - 1);
  out.set(nal.subarray(0, first), 0);
  let w = first;
  let zeros = 0;
  for (let i = first + 1; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === EMULATION_PREVENTION_BYTE) {
      zeros = 0;
      continue;
    }
    out[w++] = b;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return out.subarray(0, w);
}

function findEmulationPrevention(nal: Buffer, from: number): number {
  let zeros = 0;
  for (let i = from; i < nal.length; i++) {
    const b = nal[i]!;
    if (zeros >= 2 && b === EMULATION_PREVENTION_BYTE) return i;
    zeros = b === 0 ? zeros + 1 : 0;
  }
  return -1;
}

/**
 * MSB-first bit reader over a byte buffer (an RBSP: remove emulation
 * prevention first). Every read is bounds-checked and throws a coded error
 * (ERR_CODEC_CONFIG_MALFORMED by default) when the bits run out.
 */
export class BitReader {
  private bitPos: number;
  private readonly bitEnd: number;

  constructor(
    private readonly buf: Buffer,
    private readonly truncatedCode: Code = ErrorCode.CodecConfigMalformed,
  ) {
    this.bitPos = 0;
    this.bitEnd = buf.length * 8;
  }

  /** Bits not yet read. */
  get bitsLeft(): number {
    return this.bitEnd - this.bitPos;
  }

  /** Position in bits from the start. */
  get position(): number {
    return this.bitPos;
  }

  private need(n: number): void {
    if (n > this.bitEnd - this.bitPos) {
      throw serverError(this.truncatedCode, `bitstream truncated: need ${n} bits at bit ${this.bitPos}, have ${this.bitEnd - this.bitPos}`);
    }
  }

  /** One bit, u(1). */
  bit(): number {
    this.need(1);
    const p = this.bitPos++;
    return (this.buf[p >>> 3]! >>> (7 - (p & 7))) & 1;
  }

  /** Boolean flag, u(1). */
  flag(): boolean {
    return this.bit() === 1;
  }

  /** An unsigned n-bit value, u(n), 0 <= n <= 32. */
  bits(n: number): number {
    if (!Number.isInteger(n) || n < 0 || n > 32) throw new RangeError(`BitReader.bits: bad width ${n}`);
    this.need(n);
    let v = 0;
    for (let i = 0; i < n; i++) {
      const p = this.bitPos++;
      // multiplication, not <<, so 32-bit values stay positive
      v = v * 2 + ((this.buf[p >>> 3]! >>> (7 - (p & 7))) & 1);
    }
    return v;
  }

  skipBits(n: number): void {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`BitReader.skipBits: bad count ${n}`);
    this.need(n);
    this.bitPos += n;
  }

  /** Unsigned exp-Golomb, ue(v): 0 .. 2^32 - 2. */
  ue(): number {
    let zeros = 0;
    while (this.bit() === 0) {
      zeros++;
      if (zeros > MAX_EXP_GOLOMB_LEADING_ZEROS) {
        throw serverError(this.truncatedCode, `exp-Golomb code longer than ${MAX_EXP_GOLOMB_LEADING_ZEROS} leading zeros at bit ${this.bitPos}`);
      }
    }
    return 2 ** zeros - 1 + this.bits(zeros);
  }

  /** Signed exp-Golomb, se(v): k maps to (-1)^(k+1) * ceil(k / 2). */
  se(): number {
    const k = this.ue();
    const magnitude = Math.ceil(k / 2);
    return k % 2 === 1 || k === 0 ? magnitude : -magnitude;
  }
}
