# bash completion for tickgate: commands, flags and, where a command takes a
# JOB, the jobs of this host (asked of `tickgate __complete`).
_tickgate() {
  local IFS=$'\n'
  COMPREPLY=($(tickgate __complete -- "${COMP_WORDS[@]:1:COMP_CWORD}" 2>/dev/null))
}
complete -o default -F _tickgate tickgate
