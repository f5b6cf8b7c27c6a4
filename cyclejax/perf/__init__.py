"""The benchmark harness (python -m cyclejax.bench) and the PyTorch references it times
against (torch is imported only by those references, when a benchmark asks for them)."""
