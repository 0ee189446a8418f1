import type { Command } from 'commander';

/**
 * One or more examples per command, shown at the end of its `--help` (as `gcloud run … --help` and
 * `flyctl … --help` do). Keyed by the command's path below `berth`. The CLI e2e test walks every
 * command's help and fails on one without examples.
 */
export const EXAMPLES: Record<string, string[]> = {
  login: ['berth login --api http://127.0.0.1:8080 --token brt_...', 'echo "$PASSWORD" | berth login --api https://berth.example --email me@example.com --password-stdin'],
  logout: ['berth logout'],
  whoami: ['berth whoami', 'berth whoami --json'],
  projects: ['berth projects', 'berth -p staging services        # use another project for one command'],
  services: ['berth services', 'berth services --deleted', 'berth services --names'],
  status: ['berth status web', 'berth status web --json | jq .spec.resources'],
  ps: ['berth ps web', 'berth ps web -a                  # also the replicas Berth stopped'],
  deploy: [
    'berth deploy web --image 127.0.0.1:5000/berth-fixtures/web:v1 --port 8080',
    'berth deploy web --image registry.example/app:1.5 --cpu 500m --memory 512Mi --min 0 --max 5',
    'berth deploy web --tag v2 --detach',
    'berth deploy consumer --image registry.example/worker:2 --no-port --restart on-failure:3',
  ],
  create: ['berth create web --image registry.example/app:1.5 --port 8080'],
  rollback: ['berth rollback web', 'berth rollback web --to 3', 'berth rollback web --to v1'],
  scale: ['berth scale web --replicas 3', 'berth scale web --min 0 --max 5 --concurrency 50', 'berth scale web --min 2 --max 2'],
  delete: ['berth delete web', 'berth delete web --yes           # scripts and CI (no terminal to ask on)'],
  revisions: ['berth revisions web', 'berth revisions web --deleted'],
  diff: ['berth diff web 2 3'],
  logs: ['berth logs web', 'berth logs web -f --since 10m -t', 'berth logs web --since 2026-01-02T15:04:05Z --tail 50', 'berth logs web --replica <id>'],
  events: ['berth events', 'berth events web --limit 20', 'berth events web --deleted'],
  resolve: ['berth resolve registry.example/app:1.5'],
  images: ['berth images', 'berth images --json'],
  nodes: ['berth nodes', 'berth nodes tokens create --node node-2 --ttl 1h'],
  'nodes revoke': ['berth nodes revoke node-2'],
  'nodes tokens': ['berth nodes tokens create --node node-2', 'berth nodes tokens list'],
  'nodes tokens create': ['berth nodes tokens create', 'berth nodes tokens create --node node-2 --ttl 30m --description "rack 4"'],
  'nodes tokens list': ['berth nodes tokens list'],
  'nodes tokens revoke': ['berth nodes tokens revoke <id>'],
  drain: ['berth drain node-1'],
  undrain: ['berth undrain node-1'],
  'join-token': ['berth join-token --node node-2'],
  tokens: ['berth tokens create ci --role deployer', 'berth tokens list'],
  'tokens create': ['berth tokens create ci --role deployer --expires-in-days 30'],
  'tokens list': ['berth tokens list'],
  'tokens revoke': ['berth tokens revoke <id>'],
  completion: ['source <(berth completion bash)', 'source <(berth completion zsh)'],
};

/** Adds each command's examples to the end of its help (the e2e test fails on a command without any). */
export function addExamples(root: Command, path: string[] = []): void {
  for (const cmd of root.commands) {
    const key = [...path, cmd.name()].join(' ');
    const lines = EXAMPLES[key];
    if (lines?.length) cmd.addHelpText('after', `\nExamples:\n${lines.map((l) => `  $ ${l}`).join('\n')}\n`);
    addExamples(cmd, [...path, cmd.name()]);
  }
}
