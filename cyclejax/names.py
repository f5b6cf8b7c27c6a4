"""The names cyclejax's parts agree on, in one leaf module (it imports nothing).

The config schema validates against these tuples without importing the code that
implements them (the CAM maths, the losses), and every tool spells a network or a loss
the same way: the reference CycleGAN's vocabulary.
"""

# The networks of a two-domain run, as the reference names them, and what each does.
GENERATORS = ("G_A", "G_B")
DISCRIMINATORS = ("D_A", "D_B")
NETWORKS = (*GENERATORS, *DISCRIMINATORS)
# Mask discriminators of explanation-guided training (config.xai.mask_input).
MASK_DISCRIMINATORS = ("Dm_A", "Dm_B")
ROLES = {
  "G_A": "generator A -> B",
  "G_B": "generator B -> A",
  "D_A": "discriminator of domain B (real B vs G_A's fakes)",
  "D_B": "discriminator of domain A (real A vs G_B's fakes)",
  "Dm_A": "mask discriminator beside D_A (xAI-CycleGAN)",
  "Dm_B": "mask discriminator beside D_B (xAI-CycleGAN)",
}
# Translation directions and the generator each uses.
DIRECTIONS = {"AtoB": "G_A", "BtoA": "G_B"}

# The reference's eight loss terms (its `loss_names`), logged by the trainer and
# reported by every tool under these names, plus their sum 'G' (the generators'
# objective, identity included).
LOSS_NAMES = ("D_A", "G_A", "cycle_A", "idt_A", "D_B", "G_B", "cycle_B", "idt_B")
GENERATOR_OBJECTIVE = "G"

GAN_MODES = ("lsgan", "vanilla")

# Discriminator explanations of cyclejax.explain.
EXPLAIN_METHODS = ("scorecam", "scorecam_softmax", "gradcam", "gradcampp", "saliency")
# Explanation maps xAI-CycleGAN training can use.
XAI_EXPLANATIONS = ("saliency", "gradcam", "scorecam")

# Orders of the SFT-GAN's cumulative Grad-CAM averages (cyclejax.explain.classifier).
CGMA_ORDERS = ("shallow_first", "deep_first")
