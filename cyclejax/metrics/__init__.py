"""Quality metrics the trainer and the tools share: the FID feature network (inception),
FID and KID (fid), a run's evaluation (evaluate) and the toy task's exact metrics (toy)."""
