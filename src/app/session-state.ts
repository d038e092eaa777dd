import type { SessionInfo } from './chain.js';

/**
 * A module's state for one session (a connection, a pull's upstream...), kept
 * the one way every module keeps it: with the session itself, under the
 * module's own key. It lives as long as the session object, so a module that
 * misses a disconnect leaks nothing, and no module keeps a map of sessions.
 *
 *   const WARNED = new SessionKey('exec', () => ({ pullWarned: false }));
 *   sessionState(ctx.session, WARNED).pullWarned = true;
 */
export class SessionKey<T> {
  constructor(
    /** the module, for debugging */
    readonly module: string,
    readonly create: () => T,
  ) {}
}

const states = new WeakMap<SessionInfo, Map<SessionKey<unknown>, unknown>>();

/** The session's state under `key`, created on first use. */
export function sessionState<T>(session: SessionInfo, key: SessionKey<T>): T {
  let map = states.get(session);
  if (map === undefined) states.set(session, (map = new Map()));
  if (map.has(key)) return map.get(key) as T;
  const value = key.create();
  map.set(key, value);
  return value;
}

/** The session's state under `key` if any was made. */
export function peekSessionState<T>(session: SessionInfo, key: SessionKey<T>): T | undefined {
  return states.get(session)?.get(key) as T | undefined;
}

/** Forgets the session's state under `key` (its disconnect). */
export function dropSessionState<T>(session: SessionInfo, key: SessionKey<T>): void {
  const map = states.get(session);
  if (map === undefined) return;
  map.delete(key);
  if (map.size === 0) states.delete(session);
}
