/**
 * cgroup v2 on a real kernel: boots Debian's 6.1 kernel under qemu (test/vm/harness.ts) and runs,
 * in the guest, the runtime conformance suite and the cgroup v2 checks (test/vm/guest/) against
 * runc — once with a shell as PID 1 (cgroupfs driver) and once with systemd as PID 1 (systemd
 * driver, chosen automatically). Fails with the guest's own failure messages. Skips only when
 * qemu or the kernel cannot be installed.
 */
import { prepareFixture } from '../integration/runtime/fixture';
import { ensureVmTools, GuestRun, REPO_ROOT, runGuest, VmTools } from './harness';

// ~5 min on an idle 2-core machine; 10 min seen with the machine's load average at 23.
const GUEST_TIMEOUT_MS = 20 * 60_000;
jest.setTimeout(GUEST_TIMEOUT_MS + 60_000);

const tools = ensureVmTools();
const describeVm = typeof tools === 'string' ? describe.skip : describe;
if (typeof tools === 'string') {
  console.warn(`SKIPPED cgroup v2 VM tests: ${tools}`);
}

interface JestJson {
  numFailedTests: number;
  numPassedTests: number;
  numTotalTests: number;
  testResults: { name: string; message: string; status: string; assertionResults: { fullName: string; status: string; failureMessages: string[] }[] }[];
}

/** The jest run inside the guest; its JSON report comes back through the job directory. */
function jestJob(tests: string[]): string {
  return [
    `cd ${REPO_ROOT}`,
    `export BERTH_VM_TESTS='${tests.map((t) => `<rootDir>/${t}`).join(',')}'`,
    't0=$(cut -d" " -f1 /proc/uptime)',
    'node node_modules/.bin/jest -c test/vm/guest/jest.config.js --ci --runInBand --forceExit --json --outputFile /job/result.json 2>&1',
    'rc=$?',
    'echo "berth-vm: jest exit $rc, ran from ${t0} s to $(cut -d" " -f1 /proc/uptime) s of guest uptime"',
    'exit $rc',
    '',
  ].join('\n');
}

function report(run: GuestRun): string {
  const lines: string[] = [];
  let parsed: JestJson | null = null;
  try {
    parsed = run.files['result.json'] ? (JSON.parse(run.files['result.json']) as JestJson) : null;
  } catch {
    /* reported below */
  }
  if (parsed) {
    for (const file of parsed.testResults) {
      for (const a of file.assertionResults.filter((x) => x.status === 'failed')) lines.push(`✕ ${a.fullName}\n${a.failureMessages.join('\n')}`);
      if (file.status === 'failed' && file.message && !file.assertionResults.some((x) => x.status === 'failed')) lines.push(`${file.name}: ${file.message}`);
    }
  }
  if (!parsed) lines.push('no jest report came back from the guest');
  if (run.timedOut) lines.push(`the guest did not finish within ${GUEST_TIMEOUT_MS / 1000} s`);
  lines.push(`guest exit code: ${run.exitCode}`, '--- job output (tail) ---', run.output.split('\n').slice(-60).join('\n'), '--- serial console (tail) ---', run.serial.split('\n').slice(-30).join('\n'));
  return lines.join('\n');
}

function expectGuestPassed(run: GuestRun, minTests: number): void {
  const parsed = run.files['result.json'] ? (JSON.parse(run.files['result.json']) as JestJson) : null;
  const ok = run.exitCode === 0 && parsed !== null && parsed.numFailedTests === 0 && parsed.numPassedTests >= minTests;
  if (!ok) throw new Error(`guest conformance failed:\n${report(run)}`);
  console.log(`guest: boot to cgroup2 ${run.bootSeconds} s, ${parsed.numPassedTests} tests passed, ${run.wallSeconds.toFixed(0)} s wall`);
}

describeVm('cgroup v2 guest (Debian kernel under qemu TCG)', () => {
  // Both guests boot at once (each guest is slow, mostly single-threaded emulation); each test
  // awaits its own.
  const runs: Partial<Record<'cgroupfs' | 'systemd', Promise<GuestRun>>> = {};
  beforeAll(() => {
    const vm = tools as VmTools;
    // The busybox image the runtime tests run, built on the host (umoci) and copied into the guest.
    prepareFixture();
    const job = { copy: ['/var/tmp/berth-runtime-fixture'], cpus: 1, timeoutMs: GUEST_TIMEOUT_MS };
    runs.cgroupfs = runGuest(vm, {
      ...job,
      init: 'sh',
      script: jestJob(['test/integration/runtime/conformance.test.ts', 'test/vm/guest/cgroup-v2.test.ts']),
      env: { BERTH_VM_EXPECT_DRIVER: 'cgroupfs' },
    });
    runs.systemd = runGuest(vm, {
      ...job,
      init: 'systemd',
      script: jestJob(['test/vm/guest/cgroup-v2.test.ts']),
      env: { BERTH_VM_EXPECT_DRIVER: 'systemd' },
    });
    for (const r of Object.values(runs)) r.catch(() => undefined); // observed by the tests below
  });

  it('runc on cgroup v2, cgroupfs driver: runtime conformance + cpu.max/memory.max/pids.max, OOM via memory.events, cgroup.freeze, cleanup', async () => {
    expectGuestPassed(await runs.cgroupfs!, 15);
  });

  it('systemd as PID 1: the runtime picks the systemd driver (a slice per container, berth-<id>.scope) and passes the same cgroup v2 checks', async () => {
    expectGuestPassed(await runs.systemd!, 6);
  });
});
