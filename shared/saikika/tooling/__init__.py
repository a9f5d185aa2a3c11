"""Developer tooling: the `saikika` command, the local stack, the demo and function packaging. Never
imported by a handler, so never shipped in a function zip."""
