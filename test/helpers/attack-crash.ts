import net from 'node:net';
import type { TestContext } from 'node:test';
import { ByteWriter } from '../../src/core/bytes.js';
import { ErrorCode, serverError } from '../../src/core/errors.js';
import { silentLogger } from '../../src/core/log.js';
import { encodeAmf0 } from '../../src/rtmp/amf0.js';
import { u29Size, writeU29 } from '../../src/rtmp/amf3.js';
import { DEFAULT_CONNECTION_OPTIONS, RtmpConnection, type ConnectionHandler, type PlayInfo } from '../../src/rtmp/connection.js';
import { ChunkStreamId, MessageType } from '../../src/rtmp/messages.js';

/** AMF0 marker switching to AMF3 (AVM+), AMF3 array and string markers. */
const AMF0_AVMPLUS = 0x11;
const AMF3_ARRAY = 0x09;
const AMF3_STRING = 0x06;
/** U29 of an inline value (low bit set) of length/count n; a reference to entry i is i << 1 */
const inline = (n: number): number => (n << 1) | 1;
const AMF3_EMPTY_STRING = inline(0);

/**
 * A "reference bomb" data message body (AMF0, type 18): @setDataFrame("onMetaData", <AMF3 array>)
 * whose array holds one string of `stringBytes` bytes and then `refs` references to it. Small on the
 * wire (stringBytes + 2 * refs bytes), stringBytes * (refs + 1) once written out in full.
 */
export function referenceBombSetDataFrame(stringBytes = 200 * 1024, refs = 300): Buffer {
  const head = encodeAmf0(['@setDataFrame', 'onMetaData']);
  const count = refs + 1;
  const size = head.length + 2 + u29Size(inline(count)) + 1 + 1 + u29Size(inline(stringBytes)) + stringBytes + refs * 2;
  const w = new ByteWriter(size);
  head.copy(w.buf, 0);
  w.pos = head.length;
  w.u8(AMF0_AVMPLUS).u8(AMF3_ARRAY);
  writeU29(w, inline(count));
  writeU29(w, AMF3_EMPTY_STRING); // no associative part
  w.u8(AMF3_STRING);
  writeU29(w, inline(stringBytes));
  w.buf.fill(0x61, w.pos, w.pos + stringBytes);
  w.pos += stringBytes;
  for (let i = 0; i < refs; i++) {
    w.u8(AMF3_STRING);
    writeU29(w, 0); // reference to string 0
  }
  return w.done();
}

export { healthyStream, stillFlowing } from './attack-conn.js';

export interface FakeUpstream {
  readonly port: number;
  /** sends script data (type 18) to every playing peer */
  sendData(payload: Buffer): void;
  /** sends one video message to every playing peer */
  sendVideo(timestamp: number, payload: Buffer): void;
  readonly players: number;
}

/**
 * A minimal RTMP origin for pull-relay tests: accepts connect and play (any
 * name) and sends whatever the test tells it to, byte for byte, without the
 * server's own checks (a hostile or broken upstream).
 */
export async function fakeUpstream(t: TestContext): Promise<FakeUpstream> {
  const playing: { conn: RtmpConnection; info: PlayInfo }[] = [];
  const handler: ConnectionHandler = {
    connect: () => {},
    publish: () => {
      throw new Error('the fake upstream takes no publishers');
    },
    play: (conn, info, output) => {
      output.begin(info.name, false);
      playing.push({ conn, info });
      return { resume: () => {}, close: () => {} };
    },
    closed: (conn) => {
      const i = playing.findIndex((p) => p.conn === conn);
      if (i >= 0) playing.splice(i, 1);
    },
  };
  const conns: RtmpConnection[] = [];
  let n = 0;
  const server = net.createServer((socket) => {
    conns.push(new RtmpConnection(`fake-${++n}`, socket, handler, DEFAULT_CONNECTION_OPTIONS, silentLogger()));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.after(() => {
    for (const c of conns) c.fail(serverError(ErrorCode.ClientClosed, 'test over'), 'debug');
    server.close();
  });
  const a = server.address();
  if (a === null || typeof a !== 'object') throw new Error('no port');
  const send = (type: number, csid: number, timestamp: number, payload: Buffer): void => {
    for (const p of playing) p.conn.send({ csid, type, streamId: p.info.streamId, timestamp, payload });
  };
  return {
    port: a.port,
    sendData: (payload) => send(MessageType.DataAmf0, ChunkStreamId.Data, 0, payload),
    sendVideo: (timestamp, payload) => send(MessageType.Video, ChunkStreamId.Video, timestamp, payload),
    get players() {
      return playing.length;
    },
  };
}
