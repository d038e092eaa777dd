import net from 'node:net';
import { ErrorCode, serverError } from '../core/errors.js';
import type { AccessAction, AccessKind, AccessRule } from '../config/types.js';
import type { AppModule, SessionInfo } from './chain.js';

/**
 * nginx-rtmp's access module: `allow|deny publish|play ADDRESS|CIDR|all`.
 * Rules are checked in their configured order; the first rule of the request's
 * kind whose address matches decides. No matching rule: allowed.
 */

type Family = 'ipv4' | 'ipv6';

interface CompiledRule {
  readonly action: AccessAction;
  readonly kind: AccessKind;
  readonly text: string;
  /** undefined = `all` */
  readonly list: net.BlockList | undefined;
}

/** A remote address as rules see it: IPv4-mapped IPv6 becomes IPv4, a zone id is dropped. */
export interface NormalizedAddress {
  readonly address: string;
  readonly family: Family | undefined;
  /** the IPv6 form of an IPv4-mapped address, so IPv6 rules written for it still match */
  readonly mapped: string | undefined;
}

const MAPPED_V4 = /^::ffff:(\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3})$/i;

export function normalizeAddress(raw: string): NormalizedAddress {
  let a = raw.trim();
  if (a.startsWith('[') && a.endsWith(']')) a = a.slice(1, -1);
  const zone = a.indexOf('%');
  if (zone >= 0) a = a.slice(0, zone);
  const m = MAPPED_V4.exec(a);
  if (m !== null && m[1] !== undefined && net.isIPv4(m[1])) return { address: m[1], family: 'ipv4', mapped: a };
  const v = net.isIP(a);
  return { address: a, family: v === 4 ? 'ipv4' : v === 6 ? 'ipv6' : undefined, mapped: undefined };
}

function compileRule(rule: AccessRule): CompiledRule {
  const text = rule.address.trim();
  if (text === 'all') return { action: rule.action, kind: rule.kind, text, list: undefined };
  const slash = text.indexOf('/');
  const host = slash < 0 ? text : text.slice(0, slash);
  const family = net.isIPv4(host) ? 'ipv4' : net.isIPv6(host) ? 'ipv6' : undefined;
  if (family === undefined) throw serverError(ErrorCode.ConfigBadValue, `access rule "${rule.action} ${rule.kind} ${text}": not an address, a CIDR network or "all"`);
  const list = new net.BlockList();
  if (slash < 0) {
    list.addAddress(host, family);
  } else {
    const prefixText = text.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix >= 0 && prefix <= (family === 'ipv4' ? 32 : 128))) {
      throw serverError(ErrorCode.ConfigBadValue, `access rule "${rule.action} ${rule.kind} ${text}": bad prefix length`);
    }
    list.addSubnet(host, prefix, family);
  }
  return { action: rule.action, kind: rule.kind, text, list };
}

function matches(rule: CompiledRule, addr: NormalizedAddress): boolean {
  if (rule.list === undefined) return true;
  if (addr.family === undefined) return false;
  if (rule.list.check(addr.address, addr.family)) return true;
  return addr.mapped !== undefined && rule.list.check(addr.mapped, 'ipv6');
}

/** The decision for one request: the deciding rule, or undefined when none matched (allowed). */
function checkAccess(rules: readonly CompiledRule[], kind: AccessKind, remoteAddress: string): CompiledRule | undefined {
  const addr = normalizeAddress(remoteAddress);
  for (const r of rules) {
    if (r.kind === kind && matches(r, addr)) return r;
  }
  return undefined;
}

/** The access module, or undefined when the application has no allow/deny rules. */
export function accessModule(rules: readonly AccessRule[]): AppModule | undefined {
  if (rules.length === 0) return undefined;
  const compiled = rules.map(compileRule);

  const enforce = (kind: AccessKind, session: SessionInfo, name: string): void => {
    const rule = checkAccess(compiled, kind, session.remoteAddress);
    if (rule === undefined || rule.action === 'allow') return;
    const addr = normalizeAddress(session.remoteAddress).address;
    const message = `${kind} from ${addr} denied by access rules`;
    session.log.info({ code: ErrorCode.Refused, addr, stream: name, rule: `${rule.action} ${rule.kind} ${rule.text}` }, message);
    throw serverError(ErrorCode.Refused, message);
  };

  return {
    name: 'access',
    publish: async (ctx, next) => {
      enforce('publish', ctx.session, ctx.name);
      await next();
    },
    play: async (ctx, next) => {
      enforce('play', ctx.session, ctx.name);
      await next();
    },
  };
}
