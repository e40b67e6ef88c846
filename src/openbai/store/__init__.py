"""Persistent state: workspaces, experiments, clusters, jobs, storage accounts (SQLAlchemy)."""
