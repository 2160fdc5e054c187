// Validate an AsyncAPI document with @asyncapi/parser (pinned in package.json).
// Usage: node validate-asyncapi.mjs FILE [CHANNEL_ADDRESS...]
// Exit 0 when the parser reports no error diagnostic and every named channel
// address is present with a send and a receive operation; 1 otherwise.
import { readFileSync } from 'node:fs';
import { Parser, DiagnosticSeverity } from '@asyncapi/parser';

const [file, ...addresses] = process.argv.slice(2);
if (!file) {
  console.error('usage: node validate-asyncapi.mjs FILE [CHANNEL_ADDRESS...]');
  process.exit(2);
}
const parser = new Parser();
const { document, diagnostics } = await parser.parse(readFileSync(file, 'utf8'));
const errors = diagnostics.filter((d) => d.severity === DiagnosticSeverity.Error);
for (const d of diagnostics)
  console.error(`${DiagnosticSeverity[d.severity]}: ${d.code}: ${d.message} at ${JSON.stringify(d.path)}`);
if (errors.length || !document) {
  console.error(`${errors.length} error diagnostic(s)`);
  process.exit(1);
}
let failed = 0;
for (const address of addresses) {
  const ch = document.channels().all().find((c) => c.address() === address);
  if (!ch) {
    console.error(`no channel with address ${address}`);
    failed++;
    continue;
  }
  const actions = ch.operations().all().map((o) => o.action()).sort();
  if (actions.join(',') !== 'receive,send') {
    console.error(`channel ${address}: operations ${actions}`);
    failed++;
  }
}
console.log(`asyncapi ${document.version()}: ${document.channels().length} channels, ` +
  `${document.operations().length} operations, ${errors.length} errors, ${failed} missing`);
process.exit(failed ? 1 : 0);
