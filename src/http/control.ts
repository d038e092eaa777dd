import type { ControlSection } from '../config/types.js';
import type { RtmpStatusSource } from './stat.js';

/**
 * `rtmp_control`: nginx-rtmp's control API. The section and method are the
 * last two segments of the URI (`.../drop/publisher`), the arguments come from
 * the query string:
 *
 *   drop/publisher|subscriber|client ? app=APP & name=NAME [& addr=IP] [& clientid=ID]
 *
 * The response body is the number of connections dropped (plain text), as in
 * nginx-rtmp. `srv=` is accepted and ignored (the snapshot spans every server
 * block).
 *
 *   record/start|stop ? app=APP & name=NAME [& rec=RECORDER]
 *
 * starts or stops a recorder (usually a `record ... manual` one) of a
 * published stream; the body is the recording's file path (200), empty (204)
 * when no such stream or recorder runs, as nginx-rtmp.
 *
 *   redirect/publisher|subscriber|client ? newname=NEW [& app=APP] [& name=NAME] [& addr=IP] [& clientid=ID]
 *
 * switches the matching clients' publish or play to the stream NEW on their
 * open connection (RtmpConnection.redirect), as nginx-rtmp does; as there,
 * app= and name= are optional (every application / every stream) and the body
 * is the number of streams switched. Only the sections the location's `rtmp_control`
 * names are served; another answers 404, as in nginx-rtmp (its handler
 * declines and nginx finds nothing else to serve).
 */

export interface ControlResult {
  status: number;
  body: string;
}

type DropFilter = 'publisher' | 'subscriber' | 'client';

const ALL_SECTIONS: readonly ControlSection[] = ['drop', 'record', 'redirect'];

const DROP_FILTERS: readonly string[] = ['publisher', 'subscriber', 'client'];

function isDropFilter(s: string): s is DropFilter {
  return DROP_FILTERS.includes(s);
}

/** A query argument; empty counts as absent (nginx-rtmp compares lengths). First occurrence wins. */
function arg(query: URLSearchParams, key: string): string | undefined {
  const v = query.get(key);
  return v === null || v === '' ? undefined : v;
}

/** `path` is the decoded, normalized URI path; `query` its arguments. */
export function handleControl(path: string, query: URLSearchParams, source: RtmpStatusSource, sections: readonly ControlSection[] = ALL_SECTIONS): ControlResult {
  const segments = path.split('/').filter((s) => s !== '');
  const method = segments[segments.length - 1] ?? '';
  const section = segments[segments.length - 2] ?? '';
  const known = ALL_SECTIONS.find((s) => s === section);
  if (known === undefined) return { status: 404, body: 'unknown control section (expected drop, record or redirect)\n' };
  if (!sections.includes(known)) return { status: 404, body: `control section ${known} is not served here (rtmp_control ${sections.join(' ') || '-'})\n` };
  switch (known) {
    case 'drop':
      return drop(method, query, source);
    case 'record':
      return record(method, query, source);
    case 'redirect':
      return redirect(method, query, source);
    default: {
      const never: never = known;
      throw new Error(`internal: control section ${String(never)}`);
    }
  }
}

function record(method: string, query: URLSearchParams, source: RtmpStatusSource): ControlResult {
  if (method !== 'start' && method !== 'stop') return { status: 400, body: 'Undefined record method (expected start or stop)\n' };
  const app = arg(query, 'app');
  if (app === undefined) return { status: 400, body: 'Application not specified\n' };
  const name = arg(query, 'name');
  if (name === undefined) return { status: 400, body: 'Stream name not specified\n' };
  const rec = arg(query, 'rec') ?? '';
  if (source.recordControl === undefined) return { status: 204, body: '' };
  return source.recordControl(method, app, name, rec);
}

/** nginx-rtmp's stream name bound (NGX_RTMP_MAX_NAME - 1): a longer newname is cut, as there */
const MAX_NEW_NAME = 255;

function redirect(method: string, query: URLSearchParams, source: RtmpStatusSource): ControlResult {
  if (!isDropFilter(method)) return { status: 400, body: 'Undefined filter (expected publisher, subscriber or client)\n' };
  const newName = arg(query, 'newname');
  if (newName === undefined) return { status: 400, body: 'newname not specified\n' };
  if (/[\0\r\n]/.test(newName)) return { status: 400, body: 'newname holds a control character\n' };
  const redirectConnection = source.redirectConnection?.bind(source);
  if (redirectConnection === undefined) return { status: 501, body: 'redirect: not available on this server\n' };
  const app = arg(query, 'app');
  const name = arg(query, 'name');
  const addr = arg(query, 'addr');
  const clientId = arg(query, 'clientid');
  const ids: string[] = [];
  for (const c of source.snapshot().connections) {
    if (app !== undefined && c.app !== app) continue;
    if (addr !== undefined && c.remoteAddress !== addr) continue;
    if (clientId !== undefined && c.id !== clientId) continue;
    const match = c.streams.some((s) => (name === undefined || s.name === name) && (method === 'client' || (method === 'publisher') === (s.role === 'publisher')));
    if (match && !ids.includes(c.id)) ids.push(c.id);
  }
  let switched = 0;
  for (const id of ids) switched += redirectConnection(id, method, name, newName.slice(0, MAX_NEW_NAME));
  return { status: 200, body: String(switched) };
}

function drop(method: string, query: URLSearchParams, source: RtmpStatusSource): ControlResult {
  if (!isDropFilter(method)) return { status: 400, body: 'Undefined filter (expected publisher, subscriber or client)\n' };
  const app = arg(query, 'app');
  if (app === undefined) return { status: 400, body: 'Application not specified\n' };
  const name = arg(query, 'name');
  if (name === undefined) return { status: 400, body: 'Stream name not specified\n' };
  const addr = arg(query, 'addr');
  const clientId = arg(query, 'clientid');

  const ids: string[] = [];
  for (const c of source.snapshot().connections) {
    if (c.app !== app) continue;
    if (addr !== undefined && c.remoteAddress !== addr) continue;
    if (clientId !== undefined && c.id !== clientId) continue;
    const match = c.streams.some(
      (s) => s.name === name && (method === 'client' || (method === 'publisher') === (s.role === 'publisher')),
    );
    if (match && !ids.includes(c.id)) ids.push(c.id);
  }
  let dropped = 0;
  for (const id of ids) if (source.dropConnection(id, `dropped by the control API (drop/${method})`)) dropped++;
  return { status: 200, body: String(dropped) };
}
