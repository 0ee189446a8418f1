/**
 * Shell completion scripts, generated from the command tree so they never drift from the CLI:
 * `berth completion bash` / `berth completion zsh`. Service names complete dynamically from
 * `berth services --names` (silently nothing when not logged in).
 */
export interface CommandSpec {
  name: string;
  options: string[];
  subcommands: CommandSpec[];
  /** The first positional argument is a service name. */
  takesService?: boolean;
}

const words = (xs: string[]) => xs.join(' ');

export function bashCompletion(root: CommandSpec): string {
  const cases = root.subcommands
    .map((c) => {
      const subs = c.subcommands.map((s) => s.name);
      const opts = [...c.options, ...root.options];
      const body = subs.length
        ? `if [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=( $(compgen -W "${words(subs)}" -- "$cur") ); return; fi
        COMPREPLY=( $(compgen -W "${words([...new Set(c.subcommands.flatMap((s) => s.options).concat(root.options))])}" -- "$cur") )`
        : c.takesService
          ? `if [[ "$cur" == -* ]]; then COMPREPLY=( $(compgen -W "${words(opts)}" -- "$cur") ); elif [ "$COMP_CWORD" -eq 2 ]; then COMPREPLY=( $(compgen -W "$(${root.name} services --names 2>/dev/null)" -- "$cur") ); fi`
          : `COMPREPLY=( $(compgen -W "${words(opts)}" -- "$cur") )`;
      return `      ${c.name})\n        ${body}\n        ;;`;
    })
    .join('\n');
  return `# bash completion for ${root.name}; load with: source <(${root.name} completion bash)
_${root.name}_complete() {
  local cur="\${COMP_WORDS[COMP_CWORD]}"
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W "${words(root.subcommands.map((c) => c.name))} ${words(root.options)}" -- "$cur") )
    return
  fi
  case "\${COMP_WORDS[1]}" in
${cases}
  esac
}
complete -F _${root.name}_complete ${root.name}
`;
}

export function zshCompletion(root: CommandSpec): string {
  const cases = root.subcommands
    .map((c) => {
      const subs = c.subcommands.map((s) => s.name);
      const opts = [...c.options, ...root.options];
      const body = subs.length
        ? `if (( CURRENT == 3 )); then compadd -- ${words(subs)}; else compadd -- ${words([...new Set(c.subcommands.flatMap((s) => s.options).concat(root.options))])}; fi`
        : c.takesService
          ? `if [[ "$PREFIX" == -* ]]; then compadd -- ${words(opts)}; elif (( CURRENT == 3 )); then compadd -- \${(f)"$(${root.name} services --names 2>/dev/null)"}; fi`
          : `compadd -- ${words(opts)}`;
      return `    ${c.name}) ${body} ;;`;
    })
    .join('\n');
  return `#compdef ${root.name}
# zsh completion for ${root.name}; load with: source <(${root.name} completion zsh)
# (or save it as _${root.name} in a directory on $fpath)
_${root.name}() {
  if (( CURRENT == 2 )); then
    compadd -- ${words(root.subcommands.map((c) => c.name))} ${words(root.options)}
    return
  fi
  case "\${words[2]}" in
${cases}
  esac
}
if [[ "$funcstack[1]" == "_${root.name}" ]]; then _${root.name} "$@"; else compdef _${root.name} ${root.name}; fi
`;
}
