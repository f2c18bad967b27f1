# bash completion for demo
complete -W "--version --help" demo
