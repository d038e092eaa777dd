import net from 'node:net';
import { ErrorCode, serverError } from './errors.js';

/**
 * IP address matching shared by the rules that look at a peer's address:
 * rtmp `allow`/`deny` (src/app/access.ts), http `allow`/`deny`
 * (src/http/server.ts) and `set_real_ip_from` (the trusted PROXY protocol
 * senders). A pattern is `all`, an IPv4/IPv6 address or a CIDR network.
 */

type Family = 'ipv4' | 'ipv6';

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

/** A compiled `all` / address / CIDR pattern. */
export interface AddressPattern {
  /** the pattern as written */
  readonly text: string;
  /** undefined = `all` */
  readonly list: net.BlockList | undefined;
}

/** Compiles a pattern; `what` names the rule in the error (ConfigBadValue) when the text is not one. */
export function compileAddressPattern(textIn: string, what: string): AddressPattern {
  const text = textIn.trim();
  if (text === 'all') return { text, list: undefined };
  const slash = text.indexOf('/');
  const host = slash < 0 ? text : text.slice(0, slash);
  const family = net.isIPv4(host) ? 'ipv4' : net.isIPv6(host) ? 'ipv6' : undefined;
  if (family === undefined) throw serverError(ErrorCode.ConfigBadValue, `${what}: not an address, a CIDR network or "all"`);
  const list = new net.BlockList();
  if (slash < 0) {
    list.addAddress(host, family);
  } else {
    const prefixText = text.slice(slash + 1);
    const prefix = /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
    if (!(prefix >= 0 && prefix <= (family === 'ipv4' ? 32 : 128))) {
      throw serverError(ErrorCode.ConfigBadValue, `${what}: bad prefix length`);
    }
    list.addSubnet(host, prefix, family);
  }
  return { text, list };
}

export function patternMatches(p: AddressPattern, addr: NormalizedAddress): boolean {
  if (p.list === undefined) return true;
  if (addr.family === undefined) return false;
  if (p.list.check(addr.address, addr.family)) return true;
  return addr.mapped !== undefined && p.list.check(addr.mapped, 'ipv6');
}

/** A set of patterns (e.g. `set_real_ip_from` lines): true when the address matches any of them. */
export function addressSetMatcher(patterns: readonly string[], what: string): (address: string) => boolean {
  const compiled = patterns.map((p) => compileAddressPattern(p, `${what} ${p}`));
  return (address: string): boolean => {
    const addr = normalizeAddress(address);
    return compiled.some((p) => patternMatches(p, addr));
  };
}

/** One `allow`/`deny` line of a first-match-wins list. */
export interface AddressRule {
  readonly action: 'allow' | 'deny';
  readonly address: string;
}

/**
 * nginx's access check: the first rule whose address matches decides; no
 * matching rule allows. Returns the deciding rule's text when it denies.
 */
export function addressRulesCheck(rules: readonly AddressRule[], what: string): (address: string) => string | undefined {
  const compiled = rules.map((r) => ({ action: r.action, pattern: compileAddressPattern(r.address, `${what} "${r.action} ${r.address}"`) }));
  return (address: string): string | undefined => {
    const addr = normalizeAddress(address);
    for (const r of compiled) {
      if (patternMatches(r.pattern, addr)) return r.action === 'deny' ? `deny ${r.pattern.text}` : undefined;
    }
    return undefined;
  };
}
