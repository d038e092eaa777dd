import { ErrorCode, serverError } from '../core/errors.js';
import { decodeAmf0, decodeAmf3Command, encodeAmf0 } from './amf0.js';
import type { AmfObject, AmfValue } from './amf-types.js';
import { ChunkStreamId, MessageType, type RtmpMessage } from './messages.js';

/** A NetConnection / NetStream command (RTMP message type 20, or 17 for AMF3). */
export interface Command {
  readonly name: string;
  readonly transactionId: number;
  /** the command object (null for most NetStream commands) */
  readonly object: AmfValue;
  readonly args: readonly AmfValue[];
  readonly streamId: number;
}

/** Data message (type 18/15): a handler name and its values, e.g. @setDataFrame, onMetaData. */
export interface DataMessage {
  readonly name: string;
  readonly values: readonly AmfValue[];
}

export function decodeCommand(m: RtmpMessage): Command {
  const values = m.type === MessageType.CommandAmf3 ? decodeAmf3Command(m.payload) : decodeAmf0(m.payload);
  const [name, txid, object, ...args] = values;
  if (typeof name !== 'string') {
    throw serverError(ErrorCode.CommandMalformed, 'command message does not start with a command name');
  }
  return {
    name,
    transactionId: typeof txid === 'number' && Number.isFinite(txid) ? txid : 0,
    object: object ?? null,
    args,
    streamId: m.streamId,
  };
}

export function decodeData(m: RtmpMessage): DataMessage {
  const values = m.type === MessageType.DataAmf3 ? decodeAmf3Command(m.payload) : decodeAmf0(m.payload);
  const [name, ...rest] = values;
  if (typeof name !== 'string') {
    throw serverError(ErrorCode.MessageMalformed, 'data message does not start with a handler name');
  }
  return { name, values: rest };
}

export function commandMessage(
  streamId: number,
  name: string,
  transactionId: number,
  object: AmfValue,
  ...args: AmfValue[]
): RtmpMessage {
  return {
    csid: ChunkStreamId.Command,
    type: MessageType.CommandAmf0,
    streamId,
    timestamp: 0,
    payload: encodeAmf0([name, transactionId, object, ...args]),
  };
}

export function dataMessage(streamId: number, values: readonly AmfValue[], timestamp = 0): RtmpMessage {
  return { csid: ChunkStreamId.Data, type: MessageType.DataAmf0, streamId, timestamp, payload: encodeAmf0(values) };
}

export type StatusLevel = 'status' | 'error' | 'warning';

export function statusInfo(level: StatusLevel, code: string, description: string, extra: AmfObject = {}): AmfObject {
  return { level, code, description, ...extra };
}

/** onStatus on a NetStream (transaction 0, null command object). */
export function onStatusMessage(streamId: number, level: StatusLevel, code: string, description: string, extra: AmfObject = {}): RtmpMessage {
  return commandMessage(streamId, 'onStatus', 0, null, statusInfo(level, code, description, extra));
}

/** Status codes this server sends (NetConnection / NetStream). */
export const StatusCode = {
  ConnectSuccess: 'NetConnection.Connect.Success',
  ConnectRejected: 'NetConnection.Connect.Rejected',
  ConnectClosed: 'NetConnection.Connect.Closed',
  CallFailed: 'NetConnection.Call.Failed',
  PublishStart: 'NetStream.Publish.Start',
  PublishBadName: 'NetStream.Publish.BadName',
  PublishDenied: 'NetStream.Publish.Denied',
  UnpublishSuccess: 'NetStream.Unpublish.Success',
  PlayStart: 'NetStream.Play.Start',
  PlayReset: 'NetStream.Play.Reset',
  PlayStop: 'NetStream.Play.Stop',
  PlayStreamNotFound: 'NetStream.Play.StreamNotFound',
  PlayFailed: 'NetStream.Play.Failed',
  PlayPublishNotify: 'NetStream.Play.PublishNotify',
  PlayUnpublishNotify: 'NetStream.Play.UnpublishNotify',
  PauseNotify: 'NetStream.Pause.Notify',
  UnpauseNotify: 'NetStream.Unpause.Notify',
  DeleteStreamSuccess: 'NetStream.DeleteStream.Suceess',
  // VOD (issue 15)
  PlayComplete: 'NetStream.Play.Complete',
  SeekNotify: 'NetStream.Seek.Notify',
  SeekFailed: 'NetStream.Seek.Failed',
} as const;

/** Splits "name?a=b" into the stream name and its query string (without '?'). */
export function splitStreamName(raw: string): { name: string; query: string } {
  const q = raw.indexOf('?');
  return q < 0 ? { name: raw, query: '' } : { name: raw.slice(0, q), query: raw.slice(q + 1) };
}
