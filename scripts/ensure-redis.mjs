#!/usr/bin/env node
// Runs before `npm test`: the integration suites start real redis-server processes. Finds
// redis-server on the PATH; if it is missing and this is a Debian machine where we are root,
// installs Debian's package; otherwise stops with a one-line instruction.
import { execFileSync, spawnSync } from 'node:child_process';

const found = () => spawnSync('redis-server', ['--version'], { stdio: 'ignore' }).status === 0;

if (!found()) {
  const canInstall = process.getuid?.() === 0 && spawnSync('apt-get', ['--version'], { stdio: 'ignore' }).status === 0;
  if (!canInstall) {
    console.error(
      'redis-server is not installed: install it (Debian/Ubuntu: sudo apt-get install redis-server) and run npm test again.',
    );
    process.exit(1);
  }
  console.log('redis-server not found: installing Debian package redis-server…');
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  execFileSync('apt-get', ['update', '-qq'], { stdio: 'inherit', env });
  execFileSync('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'redis-server'], {
    stdio: 'inherit',
    env,
  });
  if (!found()) {
    console.error('redis-server is still missing after apt-get install redis-server.');
    process.exit(1);
  }
}
