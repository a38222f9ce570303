// `npm pack` this package once, and install the tarball into fresh projects.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const npmDir = join(dirname(fileURLToPath(import.meta.url)), '..', '..');

export function run(cmd, args, cwd, env = {}) {
  return execFileSync(cmd, args, { cwd, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
}

/** Packs the package into a new temp dir: `{ work, tarball, files }`. */
export function pack() {
  const work = mkdtempSync(join(tmpdir(), 'streamgate-pack-'));
  const [out] = JSON.parse(run('npm', ['pack', '--json', '--pack-destination', work], npmDir));
  return { work, tarball: join(work, out.filename), files: out.files.map((f) => f.path) };
}

/** A new project under `work` with the tarball installed (offline: it has no dependencies). */
export function installInto(work, tarball, name, extraPackageJson = {}) {
  const dir = join(work, name);
  mkdirSync(dir);
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, private: true, version: '1.0.0', ...extraPackageJson }));
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', tarball], dir);
  return dir;
}
