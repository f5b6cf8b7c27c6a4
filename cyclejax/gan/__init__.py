"""The CycleGAN objective: its state and optimizer (state.py), losses, image pools and
explanation-guided training (xai.py: the math and its wiring)."""
