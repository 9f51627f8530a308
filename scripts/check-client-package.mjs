#!/usr/bin/env node
// `npm run check:client-package`: `nestjs-wse/client` as a user gets it (issue 13). Packs the
// project with `npm pack`, installs the tarball into a fresh temporary folder, then
//   1. in Node (ESM), `import { WseClient } from 'nestjs-wse/client'` resolves into the installed
//      package's dist/client and the client subscribes against a small ws server;
//   2. in headless Chromium, a page with a bare `<script type="module">` (no bundler) loads the
//      installed files from /client/ and does the same.
// Needs the build (`npm run build`, which the npm script runs) and /usr/bin/chromium.
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';
import { WebSocketServer } from 'ws';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const CHROMIUM = '/usr/bin/chromium';
const STEP_TIMEOUT_MS = 180_000;
const BROWSER_TIMEOUT_MS = 15_000;

/**
 * The part of a WSE server the check needs: server_ready, then an answer to each subscription.
 * Used here for the browser and, as source text, inside the Node check's own process.
 */
function answerSubscriptions(socket) {
  const send = (t, p) => socket.send(JSON.stringify({ c: 'WSE', t, p, v: 1 }));
  send('server_ready', { details: { version: 1, ping_interval: 25000, connection_id: 'pack-check' } });
  socket.on('message', (data) => {
    const frame = JSON.parse(String(data));
    if (frame.t !== 'subscription') return;
    send('subscription_update', {
      action: frame.p.action,
      success_topics: frame.p.topics,
      failed_topics: [],
      errors: [],
    });
  });
}

function fail(message) {
  console.error(`check-client-package: ${message}`);
  process.exitCode = 1;
}

function run(command, args, cwd) {
  const result = spawnSync(command, args, { cwd, encoding: 'utf8', timeout: STEP_TIMEOUT_MS });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(' ')} failed (${result.error?.message ?? `exit ${result.status}`}):\n${result.stdout}\n${result.stderr}`,
    );
  }
  return result.stdout;
}

if (!existsSync(join(ROOT, 'dist/client/index.js'))) {
  console.error('dist/client/index.js is missing: run npm run build first.');
  process.exit(1);
}

const work = mkdtempSync(join(tmpdir(), 'nestjs-wse-pack-'));
try {
  // ---- pack and install ----------------------------------------------------------------------
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], ROOT));
  const tarball = join(work, packed.filename);
  const app = join(work, 'app');
  run('mkdir', ['-p', app], work);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'pack-check', private: true, type: 'module' }));
  // --prefer-offline: the dependencies are the ones `npm ci` already put in the npm cache.
  run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app);
  const installedClient = join(app, 'node_modules/nestjs-wse/dist/client');
  console.log(`installed ${packed.filename} (${packed.entryCount} files) into a fresh folder`);

  // ---- Node ESM ------------------------------------------------------------------------------
  writeFileSync(
    join(app, 'node-check.mjs'),
    `import { WseClient, WSE_CLOSE_CODES } from 'nestjs-wse/client';
import { WebSocket, WebSocketServer } from 'ws';
const resolved = import.meta.resolve('nestjs-wse/client');
const server = new WebSocketServer({ host: '127.0.0.1', port: 0 });
server.on('connection', ${answerSubscriptions.toString()});
await new Promise((resolve) => server.once('listening', resolve));
const client = new WseClient({ url: 'ws://127.0.0.1:' + server.address().port + '/wse', WebSocket });
const timer = setTimeout(() => { console.error('no subscribe answer within 5 s'); process.exit(1); }, 5000);
const answer = await client.subscribe(['pack:check']);
clearTimeout(timer);
const state = client.state;
client.close();
server.close();
console.log(JSON.stringify({ resolved, state, answer: answer.success_topics, closeCodes: Object.keys(WSE_CLOSE_CODES).length }));
`,
  );
  const node = JSON.parse(run(process.execPath, ['node-check.mjs'], app).trim());
  const expectedEntry = `file://${join(installedClient, 'index.js')}`;
  if (node.resolved !== expectedEntry) fail(`nestjs-wse/client resolved to ${node.resolved}, not ${expectedEntry}`);
  else if (node.state !== 'open' || node.answer.join() !== 'pack:check') fail(`Node: ${JSON.stringify(node)}`);
  else console.log(`Node ESM: import { WseClient } from 'nestjs-wse/client' works (${node.resolved})`);

  // ---- a browser, no bundler -----------------------------------------------------------------
  if (!existsSync(CHROMIUM)) throw new Error(`Chromium not found at ${CHROMIUM} (apt-get install -y chromium)`);
  const page = `<!doctype html><title>loading</title>
<script type="module">
  import { WseClient } from '/client/index.js';
  const client = new WseClient({ url: 'ws://' + location.host + '/wse' });
  const answer = await client.subscribe(['pack:browser']);
  document.title = client.state + ':' + answer.success_topics.join(',');
  client.close();
</script>`;
  const http = createServer((request, response) => {
    const name = request.url?.match(/^\/client\/([a-z-]+\.js)$/)?.[1];
    if (request.url === '/') {
      response.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(page);
    } else if (name !== undefined && existsSync(join(installedClient, name))) {
      response
        .writeHead(200, { 'content-type': 'text/javascript; charset=utf-8' })
        .end(readFileSync(join(installedClient, name)));
    } else {
      response.writeHead(404).end();
    }
  });
  const sockets = new WebSocketServer({ server: http, path: '/wse' });
  sockets.on('connection', answerSubscriptions);
  await new Promise((resolve) => http.listen(0, '127.0.0.1', resolve));
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    timeout: 30_000,
    args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--no-first-run', '--disable-quic'],
  });
  try {
    const tab = await browser.newPage();
    const errors = [];
    tab.on('pageerror', (error) => errors.push(error.message));
    tab.on('console', (message) => message.type() === 'error' && errors.push(message.text()));
    await tab.goto(`http://127.0.0.1:${http.address().port}/`, { timeout: BROWSER_TIMEOUT_MS });
    await tab
      .waitForFunction(() => globalThis.document.title !== 'loading', null, { timeout: BROWSER_TIMEOUT_MS })
      // A timeout is reported below, with the title and the page errors, which say more.
      .catch(() => undefined);
    const title = await tab.title();
    if (title !== 'open:pack:browser') fail(`browser: title "${title}", errors: ${JSON.stringify(errors)}`);
    else console.log('Chromium: <script type="module"> importing /client/index.js from the installed package works');
  } finally {
    await browser.close();
    sockets.close();
    http.close();
  }
} catch (error) {
  fail(error.message);
} finally {
  rmSync(work, { recursive: true, force: true });
}
