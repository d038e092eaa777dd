import { type AddressPattern, type NormalizedAddress, compileAddressPattern, normalizeAddress, patternMatches } from '../core/address.js';
import { ErrorCode, serverError } from '../core/errors.js';
import type { AccessAction, AccessKind, AccessRule } from '../config/types.js';
import type { AppModule, SessionInfo } from './chain.js';

/**
 * nginx-rtmp's access module: `allow|deny publish|play ADDRESS|CIDR|all`.
 * Rules are checked in their configured order; the first rule of the request's
 * kind whose address matches decides. No matching rule: allowed.
 * The address matching itself is src/core/address.ts (shared with http
 * allow/deny and set_real_ip_from).
 */

export { normalizeAddress, type NormalizedAddress } from '../core/address.js';

interface CompiledRule {
  readonly action: AccessAction;
  readonly kind: AccessKind;
  readonly text: string;
  readonly pattern: AddressPattern;
}

function compileRule(rule: AccessRule): CompiledRule {
  const pattern = compileAddressPattern(rule.address, `access rule "${rule.action} ${rule.kind} ${rule.address.trim()}"`);
  return { action: rule.action, kind: rule.kind, text: pattern.text, pattern };
}

function matches(rule: CompiledRule, addr: NormalizedAddress): boolean {
  return patternMatches(rule.pattern, addr);
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
