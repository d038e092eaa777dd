import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ErrorCode, isServerError } from '../../src/core/errors.js';
import { AAC_SAMPLE_RATES, adtsHeader, parseAudioSpecificConfig, type AacConfig } from '../../src/media/aac.js';

const isConfigMalformed = (e: unknown): boolean => isServerError(e, ErrorCode.CodecConfigMalformed);

/** Packs [value, width] fields MSB-first, zero-padded to whole bytes. */
function pack(fields: [number, number][]): Buffer {
  let bits = '';
  for (const [v, w] of fields) bits += v.toString(2).padStart(w, '0');
  bits = bits.padEnd(Math.ceil(bits.length / 8) * 8, '0');
  const out = Buffer.alloc(bits.length / 8);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(bits.slice(i * 8, i * 8 + 8), 2);
  return out;
}

test('AAC-LC 44.1 kHz stereo (12 10)', () => {
  assert.deepEqual(parseAudioSpecificConfig(Buffer.from([0x12, 0x10])), {
    objectType: 2,
    sampleRateIndex: 4,
    sampleRate: 44100,
    channelConfig: 2,
    codecString: 'mp4a.40.2',
  });
  const he = parseAudioSpecificConfig(Buffer.from([0x2b, 0x92, 0x08, 0x00])); // SBR, 22.05 kHz core, stereo, ext 44.1 kHz
  assert.equal(he.objectType, 5);
  assert.equal(he.sampleRate, 22050);
  assert.equal(he.codecString, 'mp4a.40.5');
});

test('audioObjectType escape (31) and explicit sampling frequency (index 15)', () => {
  const esc = parseAudioSpecificConfig(pack([[31, 5], [10, 6], [3, 4], [2, 4]]));
  assert.equal(esc.objectType, 42);
  assert.equal(esc.sampleRate, 48000);
  assert.equal(esc.codecString, 'mp4a.40.42');
  const explicit = parseAudioSpecificConfig(pack([[2, 5], [15, 4], [44100, 24], [1, 4]]));
  assert.equal(explicit.sampleRateIndex, 15);
  assert.equal(explicit.sampleRate, 44100);
  assert.equal(explicit.channelConfig, 1);
  const odd = parseAudioSpecificConfig(pack([[2, 5], [15, 4], [44056, 24], [2, 4]]));
  assert.equal(odd.sampleRate, 44056);
});

test('bad AudioSpecificConfigs: reserved index, object type 0, zero explicit rate, truncation', () => {
  assert.throws(() => parseAudioSpecificConfig(pack([[2, 5], [13, 4], [2, 4]])), isConfigMalformed);
  assert.throws(() => parseAudioSpecificConfig(pack([[0, 5], [4, 4], [2, 4]])), isConfigMalformed);
  assert.throws(() => parseAudioSpecificConfig(pack([[2, 5], [15, 4], [0, 24], [2, 4]])), isConfigMalformed);
  const samples = [Buffer.from([0x12, 0x10]), pack([[31, 5], [10, 6], [3, 4], [2, 4]]), pack([[2, 5], [15, 4], [44100, 24], [1, 4]])];
  for (const full of samples) {
    for (let cut = 0; cut < full.length; cut++) assert.throws(() => parseAudioSpecificConfig(full.subarray(0, cut)), isConfigMalformed, `cut ${cut}`);
  }
});

test('random bytes: only CodecConfigMalformed', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 8 }), (bytes) => {
      try {
        const c = parseAudioSpecificConfig(Buffer.from(bytes));
        assert.ok(c.sampleRate > 0 && c.objectType > 0);
      } catch (e) {
        assert.ok(isConfigMalformed(e), String(e));
      }
    }),
  );
});

/** Decodes the ADTS fields back (14496-3 1.A.2.2). */
function readAdts(h: Buffer): { syncword: number; id: number; layer: number; protectionAbsent: number; profile: number; sfi: number; channels: number; frameLength: number; fullness: number; blocks: number } {
  const bits = [...h].map((b) => b.toString(2).padStart(8, '0')).join('');
  const at = (o: number, w: number): number => parseInt(bits.slice(o, o + w), 2);
  return {
    syncword: at(0, 12),
    id: at(12, 1),
    layer: at(13, 2),
    protectionAbsent: at(15, 1),
    profile: at(16, 2),
    sfi: at(18, 4),
    channels: at(23, 3),
    frameLength: at(30, 13),
    fullness: at(43, 11),
    blocks: at(54, 2),
  };
}

test('adtsHeader: 7 bytes with the right fields', () => {
  const cfg = parseAudioSpecificConfig(Buffer.from([0x12, 0x10]));
  const h = adtsHeader(cfg, 100);
  assert.equal(h.length, 7);
  assert.deepEqual(readAdts(h), { syncword: 0xfff, id: 0, layer: 0, protectionAbsent: 1, profile: 1, sfi: 4, channels: 2, frameLength: 107, fullness: 0x7ff, blocks: 0 });
  // LC, 48 kHz, stereo, 371 + 7 = 378 bytes
  assert.deepEqual(adtsHeader(parseAudioSpecificConfig(Buffer.from([0x11, 0x90])), 371), Buffer.from([0xff, 0xf1, 0x4c, 0x80, 0x2f, 0x5f, 0xfc]));
});

test('adtsHeader: any LC config and frame size round-trips through the ADTS fields', () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 4 }), fc.integer({ min: 0, max: 12 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8191 - 7 }), (ot, sfi, ch, len) => {
      const cfg: AacConfig = { objectType: ot, sampleRateIndex: sfi, sampleRate: AAC_SAMPLE_RATES[sfi]!, channelConfig: ch, codecString: '' };
      const f = readAdts(adtsHeader(cfg, len));
      assert.deepEqual([f.profile, f.sfi, f.channels, f.frameLength, f.syncword], [ot - 1, sfi, ch, len + 7, 0xfff]);
    }),
  );
});

test('adtsHeader: SBR maps to LC, explicit rates map to an index or fail, limits', () => {
  const base: AacConfig = { objectType: 5, sampleRateIndex: 7, sampleRate: 22050, channelConfig: 2, codecString: 'mp4a.40.5' };
  assert.equal(readAdts(adtsHeader(base, 10)).profile, 1);
  assert.equal(readAdts(adtsHeader({ ...base, objectType: 2, sampleRateIndex: 15, sampleRate: 48000 }, 10)).sfi, 3);
  assert.throws(() => adtsHeader({ ...base, sampleRateIndex: 15, sampleRate: 44056 }, 10), isConfigMalformed);
  assert.throws(() => adtsHeader({ ...base, objectType: 42 }, 10), isConfigMalformed);
  assert.throws(() => adtsHeader({ ...base, channelConfig: 8 }, 10), isConfigMalformed);
  assert.throws(() => adtsHeader(base, 8185), (e) => isServerError(e, ErrorCode.FlvMalformed));
  assert.equal(readAdts(adtsHeader(base, 8184)).frameLength, 8191);
});
