import { spawn } from 'node:child_process';
import { Duplex } from 'node:stream';

/**
 * The one way Berth runs a helper program (runc, ip, CNI plugins, mount, mknod, setfattr, zstd):
 * no shell, argv as given, stderr kept for the error message. Used by libs/oci and libs/runtime.
 * (runc's detached shim is the one spawn that is not a helper call: it outlives the agent.)
 */

export interface ExecResult {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ExecOptions {
  /** Written to the program's stdin (then closed). */
  input?: string;
  env?: NodeJS.ProcessEnv;
  cwd?: string;
  /** SIGKILL after this long (the result then has the signal's code, 128). */
  timeoutMs?: number;
}

/** Runs a program to completion (no shell), feeding `input` on stdin. Never rejects for a non-zero exit. */
export function execFile(file: string, args: string[], opts: ExecOptions = {}): Promise<ExecResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(file, args, { env: opts.env ?? process.env, cwd: opts.cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => err.push(d));
    const timer = opts.timeoutMs ? setTimeout(() => child.kill('SIGKILL'), opts.timeoutMs) : null;
    child.on('error', (e) => {
      if (timer) clearTimeout(timer);
      reject(e);
    });
    child.on('close', (code, signal) => {
      if (timer) clearTimeout(timer);
      resolve({
        code: code ?? (signal ? 128 : 1),
        stdout: Buffer.concat(out).toString('utf8'),
        stderr: Buffer.concat(err).toString('utf8'),
      });
    });
    child.stdin.on('error', () => undefined); // EPIPE when the program exits early; its code tells
    child.stdin.end(opts.input ?? '');
  });
}

/** Like execFile but rejects with the program's stderr (or stdout) when it exits non-zero. */
export async function execOk(file: string, args: string[], opts: ExecOptions = {}): Promise<string> {
  const r = await execFile(file, args, opts);
  if (r.code !== 0) throw new Error(`${file} ${args.join(' ')} failed (${r.code}): ${(r.stderr || r.stdout).trim()}`);
  return r.stdout;
}

export interface StreamFilter {
  /** Write the input, read the output (stdin → program → stdout). */
  stream: Duplex;
  /** Resolves when the program exited 0; rejects with its exit code and the end of its stderr. */
  exited: Promise<void>;
  /** SIGKILLs the program if it still runs. */
  kill(): void;
}

/** Runs a program as a streaming filter (e.g. `zstd -d -c`): stdin and stdout as one Duplex. */
export function spawnFilter(file: string, args: string[], describe: string): StreamFilter {
  const child = spawn(file, args, { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-500)));
  const exited = new Promise<void>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${describe} failed (exit ${code}): ${stderr.trim()}`))));
  });
  exited.catch(() => undefined);
  child.stdin.on('error', () => undefined); // EPIPE when the program dies; its exit code carries the reason
  return {
    stream: Duplex.from({ writable: child.stdin, readable: child.stdout }),
    exited,
    kill: () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}
