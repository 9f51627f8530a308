#!/usr/bin/env node
// Runs before `npm test`: the integration suites start real redis-server processes, and the
// cluster suites build a local Redis Cluster with `redis-cli --cluster create`. Finds both on
// the PATH; if one is missing and this is a Debian machine where we are root, installs Debian's
// packages (redis-server, and redis-tools, which holds redis-cli); otherwise stops with a
// one-line instruction.
import { execFileSync, spawnSync } from 'node:child_process';

const runs = (command) => spawnSync(command, ['--version'], { stdio: 'ignore' }).status === 0;
const found = () => runs('redis-server') && runs('redis-cli');

if (!found()) {
  const canInstall = process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!canInstall) {
    console.error(
      'redis-server or redis-cli is not installed: install them (Debian/Ubuntu: sudo apt-get install redis-server redis-tools) and run npm test again.',
    );
    process.exit(1);
  }
  console.log('redis-server or redis-cli not found: installing Debian packages redis-server and redis-tools…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server', 'redis-tools'], {
    stdio: 'inherit',
    env,
  });
  if (!found()) {
    console.error('redis-server or redis-cli is still missing after apt-get install redis-server redis-tools.');
    process.exit(1);
  }
}
