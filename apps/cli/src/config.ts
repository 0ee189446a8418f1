import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

/** Where `berth login` keeps the API URL, credential and project: flags > env > this file. */
export interface CliConfig {
  apiUrl?: string;
  token?: string;
  project?: string;
}

export function configPath(env: NodeJS.ProcessEnv = process.env): string {
  return env.BERTH_CONFIG ?? path.join(env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'berth', 'config.json');
}

export function readConfig(file = configPath()): CliConfig {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8')) as CliConfig;
  } catch {
    return {};
  }
}

export function writeConfig(c: CliConfig, file = configPath()): void {
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, `${JSON.stringify(c, null, 2)}\n`, { mode: 0o600 });
}
