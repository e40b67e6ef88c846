"""Where jobs run: local processes or a Slurm cluster, behind one small interface."""
