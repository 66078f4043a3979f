"""The commands, one module per group. Each `cmd_*` takes the settings and the parsed
arguments (concord.cli builds the parser), prints, and returns the exit status."""
