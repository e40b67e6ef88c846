"""The server-to-node contract: the job plan a node runner receives (job_plan) and the
files the nodes report through (results). Standard library only: a node imports it at start."""
