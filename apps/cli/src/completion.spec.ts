import { bashCompletion, zshCompletion } from './completion';

const root = {
  name: 'berth',
  options: ['--json'],
  subcommands: [
    { name: 'deploy', options: ['--image', '--detach'], subcommands: [], takesService: true },
    { name: 'tokens', options: [], subcommands: [{ name: 'create', options: ['--role'], subcommands: [] }, { name: 'list', options: [], subcommands: [] }] },
  ],
};

describe('shell completion', () => {
  it('bash: commands, per-command flags, subcommands and service names', () => {
    const s = bashCompletion(root);
    expect(s).toContain('complete -F _berth_complete berth');
    expect(s).toContain('compgen -W "deploy tokens --json"');
    expect(s).toContain('compgen -W "--image --detach --json"');
    expect(s).toContain('compgen -W "create list"');
    expect(s).toContain('$(berth services --names 2>/dev/null)');
  });
  it('zsh: a compdef function with the same words', () => {
    const s = zshCompletion(root);
    expect(s.startsWith('#compdef berth\n')).toBe(true);
    expect(s).toContain('compadd -- deploy tokens --json');
    expect(s).toContain('deploy) if [[ "$PREFIX" == -* ]]; then compadd -- --image --detach --json');
    expect(s).toContain('compdef _berth berth');
  });
});
