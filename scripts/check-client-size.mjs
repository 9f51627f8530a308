#!/usr/bin/env node
// `npm run check:client-size`: the size budget of `nestjs-wse/client` (issue 13), at most 6 KB
// minified and gzipped. Bundles the built client (dist/client/index.js and what it imports) with
// esbuild for a neutral platform, so an import of a Node built-in or of anything outside
// dist/client fails here too, then measures gzip (zlib's default level, as servers send it).
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { build } from 'esbuild';

const BUDGET_BYTES = 6 * 1024;
const ENTRY = fileURLToPath(new URL('../dist/client/index.js', import.meta.url));
const CLIENT_DIR = fileURLToPath(new URL('../dist/client/', import.meta.url));

if (!existsSync(ENTRY)) {
  console.error(`${ENTRY} is missing: run npm run build first.`);
  process.exit(1);
}

const result = await build({
  entryPoints: [ENTRY],
  bundle: true,
  minify: true,
  format: 'esm',
  platform: 'neutral',
  target: 'es2022',
  write: false,
  metafile: true,
  logLevel: 'silent',
}).catch((error) => {
  console.error(`nestjs-wse/client does not bundle on its own: ${error.message}`);
  process.exit(1);
});

const outside = Object.keys(result.metafile.inputs).filter(
  (input) => !fileURLToPath(new URL(input, `file://${process.cwd()}/`)).startsWith(CLIENT_DIR),
);
if (outside.length > 0) {
  console.error(`nestjs-wse/client imports files outside dist/client: ${outside.join(', ')}`);
  process.exit(1);
}

const minified = result.outputFiles[0].contents;
const gzipped = gzipSync(minified).length;
const format = (n) => n.toLocaleString('en-US');
const line = `nestjs-wse/client: ${format(minified.length)} B minified, ${format(gzipped)} B minified+gzipped (budget ${format(BUDGET_BYTES)} B)`;
if (gzipped > BUDGET_BYTES) {
  console.error(`${line}: over budget by ${format(gzipped - BUDGET_BYTES)} B`);
  process.exit(1);
}
console.log(line);
