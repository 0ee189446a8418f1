/**
 * One measured pull: `node pull.js <reference> <storeRoot>` pulls and unpacks the image into a
 * fresh store and prints one JSON line: wall ms inside the process and peak RSS (VmHWM).
 * Run by bench/pull/run.sh after compiling with swc.
 */
import { readFileSync } from 'node:fs';
import { ImagePuller } from '@berth/oci';

async function main(): Promise<void> {
  const [ref, root] = process.argv.slice(2);
  if (!ref || !root) throw new Error('usage: pull.js <reference> <storeRoot>');
  const t0 = process.hrtime.bigint();
  const puller = new ImagePuller({ root });
  const result = await puller.pull(ref);
  await puller.close();
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  const hwm = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
  process.stdout.write(
    JSON.stringify({ ms, peakRssKb: Number(hwm), digest: result.digest, bytesFetched: result.bytesFetched, layers: result.layers.length }) + '\n',
  );
}

main().catch((err: unknown) => {
  process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
  process.exit(1);
});
