/**
 * Corpus fuzzing of what the HLS output parses or converts: every file in
 * test/fuzz/hls (avcC records, AudioSpecificConfigs, AVCC access units, our
 * playlists) and random mutations of them. Codec inputs must parse or throw a
 * ServerError; what parses must mux into transport stream packets that pass
 * our TS check. Playlists must read back or be refused, never throw.
 * On failure fast-check prints the seed (replay with HLS_FUZZ_SEED=<seed>).
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { ServerError } from '../../src/core/errors.js';
import { parseMediaPlaylist } from '../../src/hls/playlist.js';
import { parseAudioSpecificConfig } from '../../src/media/aac.js';
import { parseAvcDecoderConfig, type AvcConfig } from '../../src/media/avc.js';
import { aacAdts, avcAnnexB, TsMuxer, TsPid, TsStreamType } from '../../src/media/ts.js';
import { checkTs } from '../media/ts-check.js';

const dir = fileURLToPath(new URL('../fuzz/hls/', import.meta.url));
const corpus = readdirSync(dir)
  .sort()
  .map((name) => ({ name, bytes: readFileSync(dir + name) }));
const of = (ext: string): Buffer[] => corpus.filter((c) => c.name.endsWith(ext)).map((c) => c.bytes);

function orServerError<T>(fn: () => T): T | undefined {
  try {
    return fn();
  } catch (e) {
    if (e instanceof ServerError) return undefined;
    throw e;
  }
}

const avcc = parseAvcDecoderConfig(of('.avcc')[0]!);

/** An access unit through Annex-B and a PES: parses (or a ServerError), and what muxes checks. */
function muxVideo(au: Buffer, cfg: AvcConfig | undefined, key: boolean): void {
  const chunks = orServerError(() => avcAnnexB(au, cfg, key));
  if (chunks === undefined) return;
  const m = new TsMuxer({ video: TsStreamType.H264 });
  const ts = Buffer.concat([m.tables(), m.pes({ pid: TsPid.Video, pts: 63_000, dts: 60_000, pcr: 0, randomAccess: key, chunks })]);
  const r = checkTs(ts);
  assert.deepEqual(r.errors.filter((e) => e !== 'the first video PES is not a keyframe'), []);
}

function muxAudio(asc: Buffer, frame: Buffer): void {
  const cfg = orServerError(() => parseAudioSpecificConfig(asc));
  if (cfg === undefined) return;
  const chunks = orServerError(() => aacAdts(frame, cfg));
  if (chunks === undefined) return;
  const m = new TsMuxer({ audio: TsStreamType.Aac });
  assert.deepEqual(checkTs(Buffer.concat([m.tables(), m.pes({ pid: TsPid.Audio, pts: 63_000, pcr: 0, randomAccess: true, chunks })])).errors, []);
}

const seed = process.env['HLS_FUZZ_SEED'] !== undefined ? Number(process.env['HLS_FUZZ_SEED']) : undefined;
const params = { numRuns: 400, ...(seed !== undefined ? { seed } : {}) };

/** a corpus entry with random byte edits, truncations or extensions */
const mutated = (inputs: Buffer[]): fc.Arbitrary<Buffer> =>
  fc
    .tuple(fc.constantFrom(...inputs), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.option(fc.nat()), fc.uint8Array({ maxLength: 16 }))
    .map(([b, edits, cut, tail]) => {
      const c = Buffer.from(b);
      for (const [at, v] of edits) if (c.length > 0) c[at % c.length] = v;
      const trimmed = cut === null ? c : c.subarray(0, cut % (c.length + 1));
      return Buffer.concat([trimmed, Buffer.from(tail)]);
    });

test('the corpus as is: codec records parse, access units and AAC frames mux and check, playlists read back', () => {
  assert.ok(corpus.length >= 8);
  for (const a of of('.avcc')) assert.ok(parseAvcDecoderConfig(a).sps.length > 0);
  for (const au of of('.au')) muxVideo(au, avcc, true);
  for (const asc of of('.asc')) muxAudio(asc, Buffer.alloc(200, 0x11));
  for (const p of of('.m3u8')) assert.ok(parseMediaPlaylist(p.toString('utf8')) !== undefined);
});

test('mutated avcC records and access units: a ServerError or TS that checks', () => {
  fc.assert(
    fc.property(mutated(of('.avcc')), mutated(of('.au')), fc.boolean(), (rec, au, key) => {
      const cfg = orServerError(() => parseAvcDecoderConfig(rec));
      muxVideo(au, cfg, key);
    }),
    params,
  );
});

test('mutated AudioSpecificConfigs and frames: a ServerError or TS that checks', () => {
  fc.assert(
    fc.property(mutated(of('.asc')), fc.uint8Array({ maxLength: 9000 }), (asc, frame) => muxAudio(asc, Buffer.from(frame))),
    params,
  );
});

test('mutated playlists never throw', () => {
  fc.assert(
    fc.property(mutated(of('.m3u8')), (p) => {
      const r = parseMediaPlaylist(p.toString('latin1'));
      if (r !== undefined) for (const f of r.fragments) assert.ok(Number.isSafeInteger(f.seq) && f.durationMs >= 0);
    }),
    params,
  );
});
