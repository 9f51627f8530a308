/**
 * `npm run bench`: the benchmark suite. Runs each scenario against (a) plain ws with a naive
 * send loop, (b) plain ws with pre-built frames, (c) Socket.IO 4 and (d) nestjs-wse, servers and
 * load clients in their own processes on 127.0.0.1, and writes docs/BENCHMARKS.md and
 * docs/benchmarks.svg from what it measured. `--quick`: 1 repetition, smaller sizes, written
 * to dist-bench/ instead of docs/.
 * `--only=burst,sustained,cross,connections,patterns,subscribed,capabilities,scale,storm,profile`
 * runs a subset (development; `--only=storm` runs the reconnect storm alone). `--baseline=<dir>/index.js`: another build of nestjs-wse (for
 * example the last release, built in a checkout beside this one that links this node_modules)
 * runs as `wse-base` beside `wse` in the burst, sustained and cross scenarios, and the report
 * compares the two.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { FULL, QUICK } from './lib/config.js';
import { setQuietBudget } from './lib/cpu.js';
import { machineInfo } from './lib/machine.js';
import { buildReport } from './lib/report.js';
import { Results } from './lib/results.js';
import { burstScenario } from './scenarios/burst.js';
import { errorText, type Context } from './scenarios/common.js';
import { connectionsScenario, LARGE_SIZE_SYSTEMS } from './scenarios/connections.js';
import { crossScenario } from './scenarios/cross.js';
import { patternsScenario } from './scenarios/patterns.js';
import { scaleScenario } from './scenarios/scale.js';
import { profileScenario, type TitledProfile } from './scenarios/profile.js';
import { stormScenario } from './scenarios/storm.js';
import { subscribedScenario } from './scenarios/subscribed.js';
import { capabilitiesScenario } from './scenarios/capabilities.js';
import { sustainedScenario } from './scenarios/sustained.js';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));
const SCENARIOS = [
  'burst',
  'sustained',
  'cross',
  'connections',
  'patterns',
  'subscribed',
  'capabilities',
  'scale',
  'storm',
  'profile',
] as const;

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const config = args.includes('--quick') ? QUICK : FULL;
  setQuietBudget(config.quietBudgetMs);
  const onlyArg = args.find((a) => a.startsWith('--only='));
  const only: readonly string[] = onlyArg === undefined ? SCENARIOS : onlyArg.slice('--only='.length).split(',');
  const systemsArg = args.find((a) => a.startsWith('--systems='));
  const baselineArg = args.find((a) => a.startsWith('--baseline='));
  const baseline = baselineArg === undefined ? undefined : resolve(baselineArg.slice('--baseline='.length));
  if (baseline !== undefined) {
    if (!existsSync(baseline))
      throw new Error(`--baseline: ${baseline} does not exist (the index.js of a built nestjs-wse)`);
    // Server processes are children of this one: they find the baseline build here.
    process.env.WSE_BENCH_BASELINE = baseline;
  }
  const command = `npm run bench${args.length > 0 ? ` -- ${args.join(' ')}` : ''}`;
  const startedAt = new Date();
  const loadBefore = os.loadavg();
  const results = new Results();
  const ctx: Context = {
    config,
    results,
    jwtSecret: 'bench-secret-0123456789-abcdefghijklmnop',
    systems: systemsArg?.slice('--systems='.length).split(','),
    baseline,
    budgetEndsAt: startedAt.getTime() + config.budgetMs,
    log: (line) => console.log(line),
  };
  const watchdog = setTimeout(() => {
    console.error(`bench: still running after ${config.deadlineMs / 60_000} min; stopping (children exit with us)`);
    process.exit(1);
  }, config.deadlineMs);
  watchdog.unref();

  console.log(
    `nestjs-wse bench (${config.quick ? 'quick' : 'full'}: ${config.reps} repetition(s)); load average ${loadBefore.map((x) => x.toFixed(2)).join(' ')}`,
  );
  const phases: [string, (ctx: Context) => Promise<void>][] = [
    ['burst', burstScenario],
    ['sustained', sustainedScenario],
    ['cross', crossScenario],
    ['connections', connectionsScenario],
    ['patterns', patternsScenario],
    // The short ones first: past the time budget, what is left is skipped.
    ['subscribed', subscribedScenario],
    ['capabilities', capabilitiesScenario],
    ['scale', scaleScenario],
    ['storm', stormScenario],
  ];
  for (const [name, phase] of phases) {
    if (!only.includes(name)) continue;
    const t0 = Date.now();
    console.log(`[${name}]`);
    try {
      await phase(ctx);
    } catch (error) {
      results.note(`${name}: ${errorText(error)}`);
    }
    console.log(`[${name}] ${((Date.now() - t0) / 1000).toFixed(0)} s`);
  }

  let profiles: TitledProfile[] = [];
  if (only.includes('profile')) {
    console.log('[profile]');
    profiles = await profileScenario(ctx);
  }

  const outDir = config.quick ? join(ROOT, 'dist-bench') : join(ROOT, 'docs');
  mkdirSync(outDir, { recursive: true });
  const chartFile = config.quick ? 'benchmarks-quick.svg' : 'benchmarks.svg';
  const stormChartFile = config.quick ? 'benchmarks-storm-quick.svg' : 'benchmarks-storm.svg';
  const { markdown, svg, stormSvg, targets } = buildReport(results, {
    config,
    command,
    startedAt,
    durationMs: Date.now() - startedAt.getTime(),
    loadBefore,
    loadAfter: os.loadavg(),
    machine: machineInfo(ROOT),
    profiles,
    chartFile,
    stormChartFile,
    largeSizeSystems: LARGE_SIZE_SYSTEMS,
    // As given on the command line: the report names the build, not this machine's paths.
    baseline: baselineArg?.slice('--baseline='.length),
  });
  const mdFile = join(outDir, config.quick ? 'BENCHMARKS-quick.md' : 'BENCHMARKS.md');
  writeFileSync(mdFile, `${markdown}\n`);
  writeFileSync(join(outDir, chartFile), svg);
  writeFileSync(join(outDir, stormChartFile), stormSvg);
  writeFileSync(join(ROOT, 'dist-bench', 'results.json'), JSON.stringify(results, null, 1));

  console.log('');
  for (const t of targets) {
    const verdict = t.met === undefined ? 'NOT MEASURED' : t.met ? 'met' : 'NOT MET';
    console.log(`${verdict.padEnd(12)} ${t.name}: ${t.measured}`);
  }
  console.log(
    `\nwrote ${mdFile} and ${join(outDir, chartFile)} in ${((Date.now() - startedAt.getTime()) / 60_000).toFixed(1)} min`,
  );
  process.exit(0);
}

main().catch((error: unknown) => {
  console.error(error);
  process.exit(1);
});
