"""Making volumes appear in a job's filesystem: links, FUSE mounts, or copies."""
