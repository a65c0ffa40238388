# fish completion for tickgate: commands, flags and, where a command takes a
# JOB, the jobs of this host (asked of `tickgate __complete`).
complete -c tickgate -f -a '(tickgate __complete -- (commandline -opc)[2..-1] (commandline -ct) 2>/dev/null)'
