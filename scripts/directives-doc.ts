/**
 * Prints the configuration directive reference (markdown) generated from
 * src/config/directives.ts; with --write, also writes docs/directives.md.
 *
 *   node --import tsx scripts/directives-doc.ts [--write]
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { directiveReferenceMarkdown } from '../src/config/docs.js';

const markdown = directiveReferenceMarkdown();
process.stdout.write(markdown);
if (process.argv.includes('--write')) {
  const target = fileURLToPath(new URL('../docs/directives.md', import.meta.url));
  writeFileSync(target, markdown);
  process.stderr.write(`wrote ${target}\n`);
}
