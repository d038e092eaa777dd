/**
 * Counts what recordings hold, for bench/compare.sh's record mode: for each
 * `label=DIR`, every FLV file in DIR read with the project's FLV reader: audio
 * and video frames, seconds recorded, and frames missing inside each file
 * (a timestamp step of more than one frame interval, the interval being the
 * file's median step: the load tool's publishers send a constant-rate file,
 * so any gap is a lost frame). Both servers' files are judged the same way.
 *
 *   node --import tsx bench/lib/record-check.ts [--json out.json] ours=/tmp/a nginx=/tmp/b
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { FlvTagType, readFlvFile } from '../../src/media/flv.js';

interface Counts {
  files: number;
  unreadable: number;
  truncated: number;
  video: number;
  audio: number;
  seconds: number;
  missingVideo: number;
  missingAudio: number;
  maxVideoGapMs: number;
}

function median(v: number[]): number {
  if (v.length === 0) return 0;
  const s = [...v].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

/** frames missing in a run of timestamps of one kind, and the largest step */
function gaps(ts: number[]): { missing: number; maxGap: number } {
  const steps: number[] = [];
  for (let i = 1; i < ts.length; i++) steps.push(ts[i]! - ts[i - 1]!);
  const step = median(steps.filter((x) => x > 0));
  let missing = 0;
  let maxGap = 0;
  for (const d of steps) {
    maxGap = Math.max(maxGap, d);
    if (step > 0 && d > 1.5 * step) missing += Math.round(d / step) - 1;
  }
  return { missing, maxGap };
}

function check(dir: string): Counts {
  const c: Counts = { files: 0, unreadable: 0, truncated: 0, video: 0, audio: 0, seconds: 0, missingVideo: 0, missingAudio: 0, maxVideoGapMs: 0 };
  for (const f of readdirSync(dir)) {
    if (!f.endsWith('.flv')) continue;
    c.files++;
    let parsed;
    try {
      parsed = readFlvFile(readFileSync(path.join(dir, f)));
    } catch {
      c.unreadable++;
      continue;
    }
    if (parsed.truncatedAt !== undefined) c.truncated++;
    const v: number[] = [];
    const a: number[] = [];
    for (const tag of parsed.tags) {
      // codec headers (AVC/AAC packet type 0) are not frames
      if (tag.data[1] === 0 && (tag.type === FlvTagType.Video ? (tag.data[0]! & 0x0f) === 7 : (tag.data[0]! >> 4) === 10)) continue;
      if (tag.type === FlvTagType.Video) v.push(tag.timestamp);
      else if (tag.type === FlvTagType.Audio) a.push(tag.timestamp);
    }
    c.video += v.length;
    c.audio += a.length;
    c.seconds += ((v[v.length - 1] ?? 0) - (v[0] ?? 0)) / 1000;
    const gv = gaps(v);
    const ga = gaps(a);
    c.missingVideo += gv.missing;
    c.missingAudio += ga.missing;
    c.maxVideoGapMs = Math.max(c.maxVideoGapMs, gv.maxGap);
  }
  c.seconds = Math.round(c.seconds * 10) / 10;
  return c;
}

const args = process.argv.slice(2);
let json: string | undefined;
const result: Record<string, Counts> = {};
for (let i = 0; i < args.length; i++) {
  const a = args[i]!;
  if (a === '--json') {
    json = args[++i];
    continue;
  }
  const eq = a.indexOf('=');
  if (eq <= 0) throw new Error(`expected label=DIR, got ${a}`);
  result[a.slice(0, eq)] = check(a.slice(eq + 1));
}
for (const [label, c] of Object.entries(result)) {
  process.stdout.write(
    `${label}: ${c.files} files (${c.unreadable} unreadable, ${c.truncated} cut short), ${c.video} video + ${c.audio} audio frames, ${c.seconds} s, missing inside files: ${c.missingVideo} video, ${c.missingAudio} audio (largest video step ${c.maxVideoGapMs} ms)\n`,
  );
}
if (json !== undefined) writeFileSync(json, `${JSON.stringify(result, null, 2)}\n`);
