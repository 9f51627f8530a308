#!/usr/bin/env node
// Checks the library's layering (STYLE.md "Layout"): every import between folders of src/
// points down, and no file imports itself round a cycle. Run by `npm run lint`.
//
//   protocol, errors, reliability   import nothing of ours (the leaves wse.constants and
//                                   wse.messages may import protocol)
//   config                          the leaves, protocol, errors, reliability
//   hub | broker                    config and below, never each other
//   node                            hub and broker
//   transport                       node and below
//   observability                   transport and below
//   http                            observability and below
//   index.ts, wse.module.ts         everything
//   client                          nothing outside client/
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';

const SRC = path.resolve(import.meta.dirname, '..', 'src');
const RANK = {
  protocol: 0,
  errors: 0,
  reliability: 0,
  'wse.constants.ts': 1,
  'wse.messages.ts': 1,
  config: 2,
  hub: 3,
  broker: 3,
  node: 4,
  transport: 5,
  observability: 6,
  http: 7,
  'index.ts': 10,
  'wse.module.ts': 9,
};

function filesUnder(dir) {
  return readdirSync(dir).flatMap((name) => {
    const full = path.join(dir, name);
    if (statSync(full).isDirectory()) return filesUnder(full);
    return name.endsWith('.ts') && !name.endsWith('.spec.ts') ? [full] : [];
  });
}

const layerOf = (file) => path.relative(SRC, file).split(path.sep)[0];
const files = filesUnder(SRC);
const imports = new Map();
const problems = [];
for (const file of files) {
  const targets = [];
  for (const match of readFileSync(file, 'utf8').matchAll(/^\s*(?:import|export)\b[^'"]*?'(\.{1,2}\/[^']+)'/gm)) {
    targets.push(path.resolve(path.dirname(file), match[1]).replace(/\.js$/, '.ts'));
  }
  imports.set(file, targets);
  const from = layerOf(file);
  for (const target of targets) {
    const to = layerOf(target);
    if (from === to) continue;
    const ok =
      from === 'client' || to === 'client'
        ? false
        : RANK[from] !== undefined && RANK[to] !== undefined && RANK[to] < RANK[from];
    if (!ok) problems.push(`${path.relative(SRC, file)} imports ${path.relative(SRC, target)} (${from} -> ${to})`);
  }
}

// File-level cycles, by depth-first search.
const state = new Map();
function visit(file, trail) {
  if (state.get(file) === 'done') return;
  if (state.get(file) === 'open') {
    const cycle = trail.slice(trail.indexOf(file)).concat(file);
    problems.push(`import cycle: ${cycle.map((f) => path.relative(SRC, f)).join(' -> ')}`);
    return;
  }
  state.set(file, 'open');
  for (const target of imports.get(file) ?? []) visit(target, [...trail, file]);
  state.set(file, 'done');
}
for (const file of files) visit(file, []);

if (problems.length > 0) {
  console.error(`Layering broken (scripts/check-layers.mjs):\n  ${problems.join('\n  ')}`);
  process.exit(1);
}
console.log(`layers: ${files.length} files, every import points down, no cycles`);
