/**
 * A transport stream checker of our own, used by the HLS tests: every packet
 * 188 bytes with the sync byte, continuity counters without gaps per PID, PCR
 * present and increasing, PAT/PMT CRCs correct, and (for a fragment with
 * video) the first video PES a keyframe (random access + an IDR NAL unit).
 * It parses independently of src/media/ts.ts (no shared code).
 */

export interface TsReport {
  readonly errors: string[];
  readonly packets: number;
  /** stream_type by PID from the PMT */
  readonly streams: Map<number, number>;
  readonly pcrPid: number | undefined;
  readonly pcrs: number[];
  /** per PID, the PES units' PTS (90 kHz) */
  readonly pts: Map<number, number[]>;
  /** the first video PES is a keyframe (undefined: no video) */
  readonly startsWithKeyframe: boolean | undefined;
  /** per PID, each PES unit's elementary stream bytes (after the PES header), in order */
  readonly es: Map<number, Buffer[]>;
}

const SIZE = 188;

function crcMpeg2(b: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of b) {
    crc ^= byte << 24;
    for (let k = 0; k < 8; k++) crc = crc & 0x80000000 ? (crc << 1) ^ 0x04c11db7 : crc << 1;
    crc >>>= 0;
  }
  return crc >>> 0;
}

function readTs(b: Buffer, at: number): number {
  return ((b[at]! >> 1) & 0x07) * 2 ** 30 + (b[at + 1]! << 22) + ((b[at + 2]! >> 1) << 15) + (b[at + 3]! << 7) + (b[at + 4]! >> 1);
}

/** Whether an Annex-B H.264 (type 0x1b) or H.265 (0x24) payload carries an IDR/IRAP picture. */
function hasIdr(es: Buffer, streamType: number): boolean {
  for (let i = 0; i + 3 < es.length; i++) {
    if (es[i] !== 0 || es[i + 1] !== 0 || es[i + 2] !== 1) continue;
    const h = es[i + 3]!;
    if (streamType === 0x1b && (h & 0x1f) === 5) return true;
    if (streamType === 0x24) {
      const t = (h >> 1) & 0x3f;
      if (t >= 16 && t <= 21) return true;
    }
  }
  return false;
}

export function checkTs(buf: Buffer): TsReport {
  const errors: string[] = [];
  const streams = new Map<number, number>();
  const pts = new Map<number, number[]>();
  const es = new Map<number, Buffer[]>();
  const pcrs: number[] = [];
  let pcrPid: number | undefined;
  let pmtPid: number | undefined;
  let startsWithKeyframe: boolean | undefined;
  let sawPat = false;
  let sawPmt = false;
  const cc = new Map<number, number>();
  const pes = new Map<number, { buf: Buffer[]; randomAccess: boolean }>();

  const finishPes = (pid: number): void => {
    const p = pes.get(pid);
    pes.delete(pid);
    if (p === undefined) return;
    const b = Buffer.concat(p.buf);
    if (b.length < 9 || b[0] !== 0 || b[1] !== 0 || b[2] !== 1) {
      errors.push(`PID ${pid}: PES without start code`);
      return;
    }
    const flags = b[7]!;
    const hlen = b[8]!;
    if ((flags & 0x80) === 0) errors.push(`PID ${pid}: PES without PTS`);
    else (pts.get(pid) ?? pts.set(pid, []).get(pid)!).push(readTs(b, 9));
    (es.get(pid) ?? es.set(pid, []).get(pid)!).push(b.subarray(9 + hlen));
    const type = streams.get(pid);
    if (startsWithKeyframe === undefined && (type === 0x1b || type === 0x24)) {
      startsWithKeyframe = p.randomAccess && hasIdr(b.subarray(9 + hlen), type);
    }
  };

  if (buf.length % SIZE !== 0) errors.push(`length ${buf.length} is not a multiple of 188`);
  const packets = Math.floor(buf.length / SIZE);
  for (let k = 0; k < packets; k++) {
    const at = k * SIZE;
    const p = buf.subarray(at, at + SIZE);
    if (p[0] !== 0x47) {
      errors.push(`packet ${k}: sync byte 0x${p[0]!.toString(16)}`);
      continue;
    }
    const pusi = (p[1]! & 0x40) !== 0;
    const pid = ((p[1]! & 0x1f) << 8) | p[2]!;
    const afc = (p[3]! >> 4) & 0x03;
    const counter = p[3]! & 0x0f;
    const hasPayload = (afc & 1) !== 0;
    if (afc === 0) errors.push(`packet ${k}: adaptation_field_control 0`);
    if (hasPayload) {
      const prev = cc.get(pid);
      if (prev !== undefined && counter !== ((prev + 1) & 0x0f)) errors.push(`packet ${k}: PID ${pid} continuity ${prev} -> ${counter}`);
      cc.set(pid, counter);
    }
    let pos = 4;
    let randomAccess = false;
    if (afc & 2) {
      const len = p[4]!;
      if (5 + len > SIZE) {
        errors.push(`packet ${k}: adaptation field length ${len}`);
        continue;
      }
      if (len > 0) {
        const f = p[5]!;
        randomAccess = (f & 0x40) !== 0;
        if (f & 0x10) {
          if (len < 7) errors.push(`packet ${k}: PCR flag in a short adaptation field`);
          else {
            const base = p.readUInt32BE(6) * 2 + (p[10]! >> 7);
            if (pid !== pcrPid) errors.push(`packet ${k}: PCR on PID ${pid}, PCR_PID is ${String(pcrPid)}`);
            const last = pcrs[pcrs.length - 1];
            if (last !== undefined && base <= last) errors.push(`packet ${k}: PCR ${base} not after ${last}`);
            pcrs.push(base);
          }
        }
      }
      pos = 5 + len;
    }
    if (!hasPayload) continue;
    const payload = p.subarray(pos);
    if (pid === 0 || (pmtPid !== undefined && pid === pmtPid)) {
      if (!pusi) continue;
      const section = payload.subarray(1 + payload[0]!);
      const sectionLength = ((section[1]! & 0x0f) << 8) | section[2]!;
      const whole = section.subarray(0, 3 + sectionLength);
      if (whole.length !== 3 + sectionLength || crcMpeg2(whole) !== 0) {
        errors.push(`packet ${k}: ${pid === 0 ? 'PAT' : 'PMT'} CRC wrong`);
        continue;
      }
      if (pid === 0) {
        sawPat = true;
        pmtPid = ((section[10]! & 0x1f) << 8) | section[11]!;
      } else {
        sawPmt = true;
        pcrPid = ((section[8]! & 0x1f) << 8) | section[9]!;
        const infoLen = ((section[10]! & 0x0f) << 8) | section[11]!;
        let i = 12 + infoLen;
        while (i + 5 <= whole.length - 4) {
          streams.set(((section[i + 1]! & 0x1f) << 8) | section[i + 2]!, section[i]!);
          i += 5 + (((section[i + 3]! & 0x0f) << 8) | section[i + 4]!);
        }
      }
      continue;
    }
    if (!streams.has(pid)) {
      errors.push(`packet ${k}: PID ${pid} before/outside the PMT`);
      continue;
    }
    if (pusi) {
      finishPes(pid);
      pes.set(pid, { buf: [payload], randomAccess });
    } else {
      const cur = pes.get(pid);
      if (cur === undefined) errors.push(`packet ${k}: PID ${pid} continuation without a PES start`);
      else cur.buf.push(payload);
    }
  }
  for (const pid of [...pes.keys()]) finishPes(pid);
  if (!sawPat) errors.push('no PAT');
  if (!sawPmt) errors.push('no PMT');
  if (pcrs.length === 0) errors.push('no PCR');
  if (startsWithKeyframe === false) errors.push('the first video PES is not a keyframe');
  return { errors, packets, streams, pcrPid, pcrs, pts, startsWithKeyframe, es };
}
