import path from 'node:path';
import type { ApplicationConfig } from '../config/types.js';
import { closedConnectionBytes } from '../core/metrics.js';
import { ViewerProtocol, ViewerRegistry, type Viewer, type ViewerRoot } from '../core/viewers.js';
import type { StatConnectionSnapshot } from '../http/stat.js';

/**
 * The wiring of the HLS/DASH viewer registry (src/core/viewers.ts): which
 * directories hold which application's files (hls_path, dash_path of the
 * applications configured now), and the viewers as the stat snapshot lists
 * connections (players of protocol `hls` / `dash`).
 */

/** The hls_path / dash_path directories of these applications. */
export function viewerRoots(apps: Iterable<ApplicationConfig>): ViewerRoot[] {
  const roots: ViewerRoot[] = [];
  for (const a of apps) {
    const hls = a.hls;
    if (hls?.enabled === true && hls.path !== undefined) {
      roots.push({ dir: path.resolve(hls.path), app: a.name, protocol: ViewerProtocol.Hls, nested: hls.nested, fragmentMs: hls.fragment });
    }
    const dash = a.dash;
    if (dash?.enabled === true && dash.path !== undefined) {
      roots.push({ dir: path.resolve(dash.path), app: a.name, protocol: ViewerProtocol.Dash, nested: dash.nested, fragmentMs: dash.fragment });
    }
  }
  return roots;
}

/** A registry over the applications `apps()` gives; a viewer gone adds its bytes to the closed-connection counter (/metrics stays monotonic). */
export function viewerRegistry(apps: () => Iterable<ApplicationConfig>, isLive: (app: string, name: string) => boolean): ViewerRegistry {
  return new ViewerRegistry({ roots: () => viewerRoots(apps()), isLive }, (v) => closedConnectionBytes.inc({ protocol: v.protocol, direction: 'out' }, v.bytesOut));
}

export function viewerConnection(v: Viewer): StatConnectionSnapshot {
  return {
    id: v.id,
    remoteAddress: v.remoteAddress,
    app: v.app,
    flashVer: '',
    swfUrl: '',
    pageUrl: v.pageUrl,
    tcUrl: '',
    connectedAt: v.firstSeen,
    bytesIn: 0,
    bytesOut: v.bytesOut,
    streams: [{ streamId: 1, name: v.name, role: 'player' }],
    protocol: v.protocol,
  };
}
