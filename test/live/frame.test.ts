import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FrameKind, MediaFrame, frameFlags } from '../../src/live/frame.js';
import { AAC_HEADER, AVC_HEADER, audioFrame } from '../helpers/synthetic.js';

const frame = (kind: FrameKind, payload: Buffer): MediaFrame => new MediaFrame(kind, 0, payload, frameFlags(kind, payload));
const EX = 0x80;
const KEY = 1;
const INTER = 2;
const nal = Buffer.from([0x00, 0x00, 0x00, 0x02, 0x65, 0x88]);

/** An Enhanced RTMP video tag: [IsExHeader | FrameType | PacketType] FourCC body */
function ex(frameType: number, packetType: number, fourCC: string, ...rest: Buffer[]): Buffer {
  return Buffer.concat([Buffer.from([EX | (frameType << 4) | packetType]), Buffer.from(fourCC, 'latin1'), ...rest]);
}

test('AVC: codec, keyframe, composition time, and the codec data as a view', () => {
  // legacy AVC NALU keyframe, cts 80 ms
  const payload = Buffer.concat([Buffer.from([0x17, 0x01, 0x00, 0x00, 0x50]), nal]);
  const f = frame(FrameKind.Video, payload);
  const c = f.codecData!;
  assert.equal(c.codec, 'avc1');
  assert.equal(f.codec, 'avc1');
  assert.equal(c.cts, 80);
  assert.equal(f.cts, 80);
  assert.equal(c.isKeyframe, true);
  assert.equal(c.isConfig, false);
  assert.deepEqual(c.data, nal);
  assert.equal(c.data.buffer, payload.buffer, 'a view, not a copy');
  assert.equal(c.data.byteOffset, payload.byteOffset + 5);
  // parsed at each call, nothing kept on the frame (a cached frame holds no parse results)
  assert.notEqual(f.codecData, c);
  assert.deepEqual(f.codecData, c);
  assert.deepEqual(Object.keys(f).filter((k) => k.toLowerCase().includes('parse') || k === 'codecData'), []);

  const neg = frame(FrameKind.Video, Buffer.concat([Buffer.from([0x27, 0x01, 0xff, 0xff, 0xd8]), nal]));
  assert.equal(neg.cts, -40, 'signed');
  assert.equal(neg.codecData!.isKeyframe, false);

  const hdr = frame(FrameKind.Video, AVC_HEADER).codecData!;
  assert.equal(hdr.isConfig, true);
  assert.deepEqual(hdr.data, AVC_HEADER.subarray(5), 'the AVCDecoderConfigurationRecord');
});

test('HEVC (Enhanced RTMP): SequenceStart, CodedFrames with cts, CodedFramesX without', () => {
  const config = Buffer.from([0x01, 0x01, 0x60, 0x00]);
  const start = frame(FrameKind.Video, ex(KEY, 0, 'hvc1', config));
  assert.ok(start.isSequenceHeader, 'flagged on ingest');
  assert.equal(start.codecData!.codec, 'hvc1');
  assert.equal(start.codecData!.enhanced, true);
  assert.equal(start.codecData!.isConfig, true);
  assert.deepEqual(start.codecData!.data, config);

  const coded = frame(FrameKind.Video, ex(KEY, 1, 'hvc1', Buffer.from([0x00, 0x00, 0x21]), nal));
  assert.ok(coded.isKeyframe);
  assert.equal(coded.cts, 33);
  assert.equal(coded.codecData!.isKeyframe, true);
  assert.deepEqual(coded.codecData!.data, nal);

  const x = frame(FrameKind.Video, ex(INTER, 3, 'hvc1', nal));
  assert.equal(x.cts, 0);
  assert.equal(x.codecData!.isKeyframe, false);
  assert.deepEqual(x.codecData!.data, nal);

  const av1 = frame(FrameKind.Video, ex(KEY, 1, 'av01', nal));
  assert.equal(av1.codec, 'av01');
  assert.equal(av1.cts, 0, 'AV1 CodedFrames carry no composition time');
  assert.deepEqual(av1.codecData!.data, nal);
});

test('AAC and MP3: codec, configuration, the codec data', () => {
  const hdr = frame(FrameKind.Audio, AAC_HEADER).codecData!;
  assert.equal(hdr.codec, 'mp4a');
  assert.equal(hdr.isConfig, true);
  assert.deepEqual(hdr.data, Buffer.from([0x12, 0x10]), 'the AudioSpecificConfig');

  const raw = audioFrame(3);
  const aac = frame(FrameKind.Audio, raw);
  assert.equal(aac.codec, 'mp4a');
  assert.equal(aac.codecData!.isConfig, false);
  assert.equal(aac.codecData!.data.length, raw.length - 2);
  assert.equal(aac.cts, 0);

  const mp3payload = Buffer.from([0x2f, 0xff, 0xfb, 0x90, 0x64]); // MP3, 44 kHz, 16 bit, stereo; an MPEG frame header
  const mp3 = frame(FrameKind.Audio, mp3payload);
  assert.equal(mp3.codec, '.mp3');
  assert.equal(mp3.codecData!.isConfig, false);
  assert.deepEqual(mp3.codecData!.data, mp3payload.subarray(1));
});

test('script data and malformed tag headers have no codec data (and do not throw)', () => {
  const meta = frame(FrameKind.Data, Buffer.from('02000a6f6e4d657461446174610500', 'hex'));
  assert.equal(meta.codecData, undefined);
  assert.equal(meta.codec, '');
  const badPacketType = frame(FrameKind.Video, Buffer.from([0x17, 0x09, 0, 0, 0]));
  assert.equal(badPacketType.codecData, undefined);
  const truncated = frame(FrameKind.Video, Buffer.from([EX | (KEY << 4) | 1, 0x68, 0x76]));
  assert.equal(truncated.codecData, undefined);
  assert.equal(frame(FrameKind.Audio, Buffer.alloc(0)).codecData, undefined);
});
