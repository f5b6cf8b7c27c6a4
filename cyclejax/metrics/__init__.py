"""Quality metrics the trainer and the tools share (the toy task's exact metrics)."""
