"""The node-side job runner: environment, output paths, processes, stdout/stderr capture."""
