"""A run on disk and across processes: checkpoints (all orbax), the workdir's file
names, the metrics writer, figures, periodic actions, several processes and devices."""
