"""The jobs behind the commands: each reads, processes in blocks, writes, and returns its report."""
