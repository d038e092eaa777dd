/**
 * Where a publisher's audio and video payloads are reassembled: slabs carved in
 * order, each payload with PAYLOAD_HEADROOM bytes of its own in front of it.
 *
 * Why (issue 14, 200 publishers): a payload of 4 KiB or more given its own
 * `Buffer.allocUnsafe` is an `ArrayBuffer` of its own (a malloc, a backing store
 * the collector tracks and frees); a payload in a slab is one view, and the
 * slab goes when the last of its payloads (the GOP cache's) does. The headroom
 * lets the RTMP encoder write a message's chunk header in front of its payload
 * (`encodeInHeadroom`, src/rtmp/chunk.ts) when the message fits one output
 * chunk: the wire encoding is then a view too, with no allocation and no copy.
 *
 * Contract: `headroomOf(p)` says PAYLOAD_HEADROOM only for a Buffer whose
 * memory is an arena's. Such a payload must be used as the decoder delivered
 * it: never a view of part of it (the bytes in front of a sub-view are another
 * payload's or its own), and its headroom is written by one encoding only (the
 * frame's `headroomKey`, src/rtmp/player.ts). Only the chunk decoder allocates
 * here, only for audio and video messages.
 *
 * Memory: a connection keeps at most one slab it is filling (the first 4 KiB,
 * each next one twice the last, up to 64 KiB: a connection that sends a few
 * media messages holds little more than their bytes); a
 * slab lives while any payload in it does: the GOP cache's frames of this
 * stream plus the part of one slab. A payload too large for a slab's share
 * (DEDICATED_ABOVE) gets memory of its own, with headroom too. Frames a stream
 * keeps for its whole life (codec headers) are copied out of the arena by the
 * stream (src/live/stream.ts), so they pin no slab.
 */

/** Bytes in front of each arena payload: the longest type-0 chunk header with a 1-byte basic header and an extended timestamp (1 + 11 + 4). */
export const PAYLOAD_HEADROOM = 16;

const Arena = {
  /** a connection's first slab: one that sends a few media messages (a hostile client, a short test) holds no more */
  FirstSlabBytes: 4 * 1024,
  /** the largest slab: each new slab is twice the previous one up to this */
  SlabBytes: 64 * 1024,
  /** a payload (with its headroom) above this gets memory of its own */
  DedicatedAbove: 16 * 1024,
  /** every allocation starts at a multiple of this */
  Align: 8,
} as const;

/** The arenas' memory (slabs and dedicated payloads): one entry per slab, not per payload. */
const arenaMemory = new WeakSet<ArrayBufferLike>();

export class PayloadArena {
  private slab: Buffer | undefined = undefined;
  private used = 0;
  private nextSlabBytes: number = Arena.FirstSlabBytes;

  /** `length` bytes, uninitialized, with PAYLOAD_HEADROOM writable bytes in front that belong to it. */
  alloc(length: number): Buffer {
    const need = (PAYLOAD_HEADROOM + length + Arena.Align - 1) & ~(Arena.Align - 1);
    if (need > Arena.DedicatedAbove) {
      const own = Buffer.allocUnsafeSlow(PAYLOAD_HEADROOM + length);
      arenaMemory.add(own.buffer);
      return own.subarray(PAYLOAD_HEADROOM);
    }
    let slab = this.slab;
    if (slab === undefined || this.used + need > slab.length) {
      let size = this.nextSlabBytes;
      while (size < need) size *= 2;
      this.nextSlabBytes = Math.min(size * 2, Arena.SlabBytes);
      slab = this.slab = Buffer.allocUnsafeSlow(size);
      arenaMemory.add(slab.buffer);
      this.used = 0;
    }
    const start = this.used + PAYLOAD_HEADROOM;
    this.used += need;
    return slab.subarray(start, start + length);
  }
}

/** PAYLOAD_HEADROOM when `payload` came from an arena (see the contract above), else 0. */
export function headroomOf(payload: Buffer): number {
  return payload.byteOffset >= PAYLOAD_HEADROOM && arenaMemory.has(payload.buffer) ? PAYLOAD_HEADROOM : 0;
}
