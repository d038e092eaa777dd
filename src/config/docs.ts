/**
 * The directive reference (markdown), generated from the directive table so
 * the documentation cannot drift from what the loader accepts.
 */
import { type ConfigContext, DIRECTIVES, DIRECTIVE_GROUPS, type DirectiveSpec, type DirectiveStatus } from './directives.js';

const CONTEXT_NAMES: Readonly<Record<ConfigContext, string>> = {
  main: 'main',
  events: 'events',
  rtmp: 'rtmp',
  server: 'server',
  application: 'application',
  http: 'http',
  http_server: 'http server',
  location: 'location',
};

const STATUS_TEXT: Readonly<Record<DirectiveStatus, string>> = {
  supported: 'yes',
  unsupported: 'no (refused)',
  ignored: 'ignored (warning)',
};

function cell(text: string): string {
  return text.replace(/\|/g, '\\|').replace(/\n/g, ' ');
}

function row(spec: DirectiveSpec): string {
  const name = spec.block !== undefined ? `\`${spec.name} { … }\`` : `\`${spec.name}\``;
  const contexts = spec.contexts.map((c) => CONTEXT_NAMES[c]).join(', ');
  const dflt = spec.defaultNote ?? (spec.default !== undefined ? `\`${spec.default}\`` : '—');
  return `| ${cell(name)} | ${cell(contexts)} | ${cell(dflt)} | ${STATUS_TEXT[spec.status]} | ${cell(spec.description)} |`;
}

/** The reference: one markdown table per group (directive | context | default | supported | description). */
export function directiveReferenceMarkdown(): string {
  const out: string[] = [
    '# Configuration directives',
    '',
    '<!-- Generated from src/config/directives.ts by `node --import tsx scripts/directives-doc.ts --write`; do not edit by hand. -->',
    '',
    'The server reads nginx-rtmp-module style `nginx.conf` files. Contexts: *main* is the top level of the file;',
    '*rtmp*, *server* and *application* are blocks of `rtmp { server { application name { } } }`;',
    '*http*, *http server* and *location* are blocks of `http { server { location /path { } } }`.',
    'Values set in an outer block apply to the inner blocks that do not set them (rtmp allow/deny and exec lines add up:',
    'the inner block\'s first, then the outer ones\'; http allow/deny do not: a block with its own replaces the outer ones).',
    '',
    'Supported: **yes** = read and used; **no (refused)** = the configuration is rejected with',
    '`directive "…" is not supported yet` and its position; **ignored (warning)** = an nginx process directive',
    'that means nothing here, accepted with a warning. An unknown directive, or one in the wrong block, is an error.',
    '',
    'Times: `500ms`, `30s`, `5m`, `1h`, `1d`; a plain number means seconds. Sizes: `4096`, `128k`, `1m`.',
  ];
  for (const group of DIRECTIVE_GROUPS) {
    const specs = DIRECTIVES.filter((s) => s.group === group);
    if (specs.length === 0) continue;
    out.push('', `## ${group}`, '', '| directive | context | default | supported | description |', '|---|---|---|---|---|');
    for (const spec of specs) out.push(row(spec));
  }
  out.push('');
  return out.join('\n');
}
