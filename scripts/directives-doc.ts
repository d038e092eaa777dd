/**
 * Prints the configuration directive reference (markdown) generated from
 * src/config/directives.ts; with --write, also writes docs/directives.md and
 * the directive section of README.md.
 *
 *   node --import tsx scripts/directives-doc.ts [--write]
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { directiveReferenceMarkdown, withDirectiveReference } from '../src/config/docs.js';

const markdown = directiveReferenceMarkdown();
process.stdout.write(markdown);
if (process.argv.includes('--write')) {
  const target = fileURLToPath(new URL('../docs/directives.md', import.meta.url));
  writeFileSync(target, markdown);
  const readme = fileURLToPath(new URL('../README.md', import.meta.url));
  writeFileSync(readme, withDirectiveReference(readFileSync(readme, 'utf8')));
  process.stderr.write(`wrote ${target} and the README section\n`);
}
