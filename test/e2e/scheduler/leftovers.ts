import { execFile } from 'node:child_process';
import fs from 'node:fs';
import { promisify } from 'node:util';
import { cniBridgeFor } from '../../../apps/agent/src/config';
import type { RunningSystem } from '../../support/system';

const run = promisify(execFile);
const quiet = (cmd: string, args: string[]) => run(cmd, args).then((r) => r.stdout, () => '');

/**
 * Removes whatever runc agents named `names` may have left behind under `dataDir` (containers,
 * overlay mounts, network namespaces, bridges, cgroups) — the safety net of the e2e test, so a
 * failing run cannot leak into the machine. Only touches names derived from these agents.
 */
export async function removeAgentLeftovers(names: string[], dataDir: string, bridges: string[]): Promise<string[]> {
  const removed: string[] = [];
  for (const name of names) {
    const root = `/run/berth/${name}`;
    const ids = (await quiet('runc', ['--root', root, 'list', '-q'])).split('\n').filter(Boolean);
    for (const id of ids) {
      await quiet('runc', ['--root', root, 'kill', id, 'KILL']);
      await new Promise((r) => setTimeout(r, 200));
      await quiet('runc', ['--root', root, 'delete', '-f', id]);
      removed.push(`container ${name}/${id}`);
    }
    for (const ns of (await quiet('ip', ['netns', 'list'])).split('\n').map((l) => l.split(' ')[0]!)) {
      if (ns && ns.startsWith(`b-${name.slice(0, 12)}-`)) {
        await quiet('ip', ['netns', 'delete', ns]);
        removed.push(`netns ${ns}`);
      }
    }
    for (const ctl of fs.readdirSync('/sys/fs/cgroup').map((c) => `/sys/fs/cgroup/${c}/berth/${name}`)) {
      if (fs.existsSync(ctl)) await quiet('find', [ctl, '-depth', '-type', 'd', '-exec', 'rmdir', '{}', ';']);
    }
    fs.rmSync(root, { recursive: true, force: true });
  }
  const mounts = fs
    .readFileSync('/proc/mounts', 'utf8')
    .split('\n')
    .map((l) => l.split(' ')[1])
    .filter((m): m is string => !!m && m.startsWith(dataDir));
  for (const m of mounts.reverse()) {
    await quiet('umount', ['-l', m]);
    removed.push(`mount ${m}`);
  }
  for (const b of bridges) if (await quiet('ip', ['link', 'delete', b]).then(() => true)) removed.push(`bridge ${b}`);
  // The agents' tenant isolation tables (a gracefully stopped agent removes its own).
  for (const b of bridges) await quiet('nft', ['delete', 'table', 'inet', `berth_iso_${b}`]);
  return removed;
}

/**
 * Stops a system whose runc agents use `BERTH_CNI_BRIDGE=auto`: SIGTERM to every agent (in
 * NODE_ENV=test that stops their containers), then the safety net above, then the system. Returns
 * what the safety net had to remove — anything that starts with "container" is a leak.
 */
export async function stopRuncSystem(sys: RunningSystem | undefined): Promise<string[]> {
  if (!sys) return [];
  for (const a of sys.agents) await a.kill('SIGTERM');
  const left = await removeAgentLeftovers(
    sys.agents.map((a) => a.name),
    sys.dataDir,
    sys.agents.map((a) => cniBridgeFor({ BERTH_CNI_BRIDGE: 'auto' }, a.name)),
  );
  await sys.stop();
  return left;
}
