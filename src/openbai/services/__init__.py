"""What users do with openbai, written once for the CLI and the REST API: create a job,
resolve its volumes, schedule it, list its files. Talks to store, storage and executors."""
