"""The `bai` command."""
