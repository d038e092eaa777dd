import type { RtmpMessage } from './messages.js';
import { StatusCode, dataMessage, onStatusMessage } from './commands.js';
import { userControlMessage } from './control.js';
import type { SocketOutput } from './output.js';
import { MediaWriter } from './player.js';
import type { PlayBehaviour } from './session-types.js';

/** What a PlayerOutput needs of its connection. */
export interface PlayerConnection {
  readonly output: SocketOutput;
  send(m: RtmpMessage): void;
  close(): void;
}

/**
 * The output side of a playing NetStream: implements the live hub's frame
 * sink (structurally) and sends the NetStream status messages.
 */
export class PlayerOutput extends MediaWriter {
  private started = false;
  private behaviour: PlayBehaviour = { publishNotify: false, playRestart: false, closeOnUnpublish: false, interleave: false };

  constructor(
    private readonly conn: PlayerConnection,
    streamId: number,
  ) {
    // the media path (write, queuedBytes, cork, uncork) is MediaWriter's, on the connection's output
    super(conn.output, streamId);
  }

  configure(b: PlayBehaviour): void {
    this.behaviour = b;
    this.interleave = b.interleave;
  }

  /** Sends StreamBegin and Play.Start: the handler calls it when the play is accepted, before attaching to the stream. */
  begin(name: string, reset: boolean): void {
    const id = this.streamId;
    this.conn.send(userControlMessage({ type: 'streamBegin', streamId: id }));
    if (reset) this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayReset, `Playing and resetting ${name}.`, { details: name }));
    this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayStart, `Started playing ${name}.`, { details: name }));
    this.conn.send(dataMessage(id, ['|RtmpSampleAccess', true, true]));
    this.started = true;
  }

  /** A recorded stream (VOD) starts: StreamIsRecorded, as nginx-rtmp sends before Play.Start. */
  recorded(): void {
    this.conn.send(userControlMessage({ type: 'streamIsRecorded', streamId: this.streamId }));
  }

  /** A seek of a recorded stream landed at `ms`: StreamBegin, Seek.Notify, Play.Start. */
  seeked(name: string, ms: number): void {
    const id = this.streamId;
    this.conn.send(userControlMessage({ type: 'streamBegin', streamId: id }));
    this.conn.send(onStatusMessage(id, 'status', StatusCode.SeekNotify, `Seeking ${ms} (stream ID: ${id}).`, { details: name }));
    this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayStart, `Started playing ${name}.`, { details: name }));
  }

  /** A recorded stream sent its last frame: onPlayStatus(Play.Complete), Play.Stop, StreamEOF. */
  complete(name: string, durationMs: number): void {
    const id = this.streamId;
    this.conn.send(dataMessage(id, ['onPlayStatus', { level: 'status', code: StatusCode.PlayComplete, duration: durationMs / 1000, bytes: this.bytesWritten }]));
    this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayStop, `Stopped playing ${name}.`, { details: name }));
    this.conn.send(userControlMessage({ type: 'streamEof', streamId: id }));
  }

  /** A recorded stream broke (a corrupt file): Play.Failed, Play.Stop, StreamEOF. */
  failed(name: string, message: string): void {
    const id = this.streamId;
    this.conn.send(onStatusMessage(id, 'error', StatusCode.PlayFailed, message, { details: name }));
    this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayStop, `Stopped playing ${name}.`, { details: name }));
    this.conn.send(userControlMessage({ type: 'streamEof', streamId: id }));
  }

  onStreamStart(info: { name: string }): void {
    if (!this.started) return;
    const id = this.streamId;
    this.conn.send(userControlMessage({ type: 'streamBegin', streamId: id }));
    if (this.behaviour.publishNotify) {
      this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayPublishNotify, `${info.name} is now published.`, { details: info.name }));
    }
    if (this.behaviour.playRestart) {
      this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayStart, `Started playing ${info.name}.`, { details: info.name }));
    }
  }

  onStreamStop(info: { name: string }): void {
    if (!this.started) return;
    const id = this.streamId;
    this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayUnpublishNotify, `${info.name} is now unpublished.`, { details: info.name }));
    if (this.behaviour.playRestart) {
      this.conn.send(onStatusMessage(id, 'status', StatusCode.PlayStop, `Stopped playing ${info.name}.`, { details: info.name }));
    }
    this.conn.send(userControlMessage({ type: 'streamEof', streamId: id }));
    if (this.behaviour.closeOnUnpublish) this.conn.close();
  }
}
