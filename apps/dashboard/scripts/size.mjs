#!/usr/bin/env node
// What the first load of the services page transfers: every script and stylesheet index.html pulls
// in (modulepreloads included), measured as gzip and brotli (what mountDashboard serves).
// Usage: node apps/dashboard/scripts/size.mjs [distDir] — exits 1 above the 300 KB JS budget.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, gzipSync } from 'node:zlib';

const BUDGET_JS_BYTES = 300 * 1024;
const here = path.dirname(fileURLToPath(import.meta.url));
const dist = path.resolve(process.argv[2] ?? path.join(here, '..', 'dist'));
const indexFile = path.join(dist, 'index.html');
if (!existsSync(indexFile)) {
  console.error(`no build at ${dist}: run npm run dashboard:build first`);
  process.exit(2);
}
const html = readFileSync(indexFile, 'utf8');
const refs = [...html.matchAll(/(?:src|href)="(\/assets\/[^"]+)"/g)].map((m) => m[1]);
const sizeOf = (file, ext, make) => (existsSync(file + ext) ? readFileSync(file + ext).length : make(readFileSync(file)).length);

const rows = [['index.html', html.length, sizeOf(indexFile, '.gz', gzipSync), sizeOf(indexFile, '.br', brotliCompressSync)]];
for (const ref of [...new Set(refs)]) {
  const file = path.join(dist, ref);
  rows.push([ref.slice(1), readFileSync(file).length, sizeOf(file, '.gz', gzipSync), sizeOf(file, '.br', brotliCompressSync)]);
}
const kb = (n) => (n / 1024).toFixed(1);
const sum = (pred, i) => rows.filter(([n]) => pred(n)).reduce((s, r) => s + r[i], 0);
const isJs = (n) => n.endsWith('.js');

console.log('| file | raw KB | gzip KB | brotli KB |');
console.log('|---|---:|---:|---:|');
for (const [n, raw, gz, br] of rows) console.log(`| ${n} | ${kb(raw)} | ${kb(gz)} | ${kb(br)} |`);
console.log(`| **JS total** | ${kb(sum(isJs, 1))} | ${kb(sum(isJs, 2))} | ${kb(sum(isJs, 3))} |`);
console.log(`| **first load total** | ${kb(sum(() => true, 1))} | ${kb(sum(() => true, 2))} | ${kb(sum(() => true, 3))} |`);
const jsGz = sum(isJs, 2);
console.log(`\ncompressed JS on first load: ${kb(jsGz)} KB gzip (budget ${kb(BUDGET_JS_BYTES)} KB)`);
if (jsGz > BUDGET_JS_BYTES) {
  console.error('over budget');
  process.exit(1);
}
