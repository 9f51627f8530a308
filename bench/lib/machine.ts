import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';

export interface MachineInfo {
  readonly nproc: number;
  readonly cpuModel: string;
  readonly memory: string;
  readonly node: string;
  readonly kernel: string;
  readonly openFiles: string;
  readonly portRange: string;
  readonly redis: string;
  readonly packages: readonly { readonly name: string; readonly version: string }[];
}

function read(path: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return '';
  }
}

function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8' }).trim();
  } catch {
    return 'unknown';
  }
}

function versionOf(root: string, path: string): string | undefined {
  const file = join(root, path, 'package.json');
  if (!existsSync(file)) return undefined;
  return (JSON.parse(readFileSync(file, 'utf8')) as { version: string }).version;
}

export function machineInfo(root: string): MachineInfo {
  const cpuModel = /model name\s*:\s*(.+)/.exec(read('/proc/cpuinfo'))?.[1] ?? os.cpus()[0]?.model ?? 'unknown';
  const memKb = Number(/MemTotal:\s*(\d+)/.exec(read('/proc/meminfo'))?.[1] ?? 0);
  const packages: { name: string; version: string }[] = [];
  const add = (name: string, path = `node_modules/${name}`): void => {
    const version = versionOf(root, path);
    if (version !== undefined) packages.push({ name, version });
  };
  packages.push({ name: 'nestjs-wse', version: versionOf(root, '.') ?? 'unknown' });
  add('@nestjs/core');
  add('@nestjs/platform-ws');
  add('ws (used by @nestjs/platform-ws, so by nestjs-wse)', 'node_modules/@nestjs/platform-ws/node_modules/ws');
  add('ws');
  add('ioredis');
  add('socket.io');
  add('engine.io');
  add('socket.io-adapter');
  add('socket.io-client');
  add('@socket.io/redis-adapter');
  add('typescript');
  return {
    nproc: os.availableParallelism(),
    cpuModel,
    memory: `${(memKb / 1024 / 1024).toFixed(1)} GiB`,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
    openFiles: run('sh', ['-c', 'echo "soft $(ulimit -Sn), hard $(ulimit -Hn)"']),
    portRange: read('/proc/sys/net/ipv4/ip_local_port_range').trim().replace(/\s+/, '-'),
    redis: run('redis-server', ['--version']).replace(/^Redis server v=(\S+).*$/, '$1'),
    packages,
  };
}
