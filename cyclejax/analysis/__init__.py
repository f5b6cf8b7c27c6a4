"""Reading a trained run: inference with its networks, their internals, loss tables."""
