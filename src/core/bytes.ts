import { ErrorCode, serverError, type ErrorCode as Code } from './errors.js';

/**
 * A bounds-checked big-endian reader over a Buffer. Every read checks that the
 * bytes are there and throws a coded error (ERR_BUFFER_TRUNCATED by default)
 * when they are not. `bytes()` returns subarray views, never copies.
 */
export class ByteReader {
  pos: number;
  readonly end: number;

  constructor(
    readonly buf: Buffer,
    start = 0,
    end = buf.length,
    private readonly truncatedCode: Code = ErrorCode.BufferTruncated,
  ) {
    this.pos = start;
    this.end = end;
  }

  get remaining(): number {
    return this.end - this.pos;
  }

  /** Throws unless n more bytes are available. */
  require(n: number): void {
    if (n < 0 || this.pos + n > this.end) {
      throw serverError(this.truncatedCode, `need ${n} bytes at offset ${this.pos}, have ${this.end - this.pos}`);
    }
  }

  skip(n: number): void {
    this.require(n);
    this.pos += n;
  }

  u8(): number {
    this.require(1);
    return this.buf[this.pos++]!;
  }

  u16(): number {
    this.require(2);
    const v = this.buf.readUInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  u24(): number {
    this.require(3);
    const b = this.buf;
    const p = this.pos;
    this.pos += 3;
    return (b[p]! << 16) | (b[p + 1]! << 8) | b[p + 2]!;
  }

  /** Signed 24-bit big-endian (FLV composition time). */
  i24(): number {
    const v = this.u24();
    return v & 0x800000 ? v - 0x1000000 : v;
  }

  u32(): number {
    this.require(4);
    const v = this.buf.readUInt32BE(this.pos);
    this.pos += 4;
    return v;
  }

  u32le(): number {
    this.require(4);
    const v = this.buf.readUInt32LE(this.pos);
    this.pos += 4;
    return v;
  }

  i16(): number {
    this.require(2);
    const v = this.buf.readInt16BE(this.pos);
    this.pos += 2;
    return v;
  }

  f64(): number {
    this.require(8);
    const v = this.buf.readDoubleBE(this.pos);
    this.pos += 8;
    return v;
  }

  /** A view of the next n bytes (no copy). */
  bytes(n: number): Buffer {
    this.require(n);
    const v = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return v;
  }

  /** The rest of the buffer as a view. */
  rest(): Buffer {
    const v = this.buf.subarray(this.pos, this.end);
    this.pos = this.end;
    return v;
  }

  peekU8(): number {
    this.require(1);
    return this.buf[this.pos]!;
  }
}

/**
 * A writer into a buffer allocated once at its final size: compute the size
 * first, then write. Overflowing the size is a bug (assertion), not bad input.
 */
export class ByteWriter {
  readonly buf: Buffer;
  pos = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  private room(n: number): void {
    if (this.pos + n > this.buf.length) {
      throw new RangeError(`ByteWriter overflow: ${this.pos}+${n} > ${this.buf.length}`);
    }
  }

  u8(v: number): this {
    this.room(1);
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u16(v: number): this {
    this.room(2);
    this.buf.writeUInt16BE(v & 0xffff, this.pos);
    this.pos += 2;
    return this;
  }

  u24(v: number): this {
    this.room(3);
    this.buf[this.pos++] = (v >>> 16) & 0xff;
    this.buf[this.pos++] = (v >>> 8) & 0xff;
    this.buf[this.pos++] = v & 0xff;
    return this;
  }

  u32(v: number): this {
    this.room(4);
    this.buf.writeUInt32BE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  u32le(v: number): this {
    this.room(4);
    this.buf.writeUInt32LE(v >>> 0, this.pos);
    this.pos += 4;
    return this;
  }

  i16(v: number): this {
    this.room(2);
    this.buf.writeInt16BE(v, this.pos);
    this.pos += 2;
    return this;
  }

  f64(v: number): this {
    this.room(8);
    this.buf.writeDoubleBE(v, this.pos);
    this.pos += 8;
    return this;
  }

  bytes(b: Uint8Array): this {
    this.room(b.length);
    this.buf.set(b, this.pos);
    this.pos += b.length;
    return this;
  }

  /** Returns the buffer, asserting it was filled exactly. */
  done(): Buffer {
    if (this.pos !== this.buf.length) {
      throw new RangeError(`ByteWriter underfilled: wrote ${this.pos} of ${this.buf.length}`);
    }
    return this.buf;
  }
}
