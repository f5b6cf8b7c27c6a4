"""Explaining CNN classifiers with conditional GANs (LSFT-GAN / GSFT-GAN).

"Interpreting CNN Predictions using Conditional GANs": a GAN learns to draw a
classifier's Grad-CAM from the image and the classifier's cumulative Grad-CAM averages
(CGMA), fed to spatial feature transform layers. Stages: `classifiers` (train the CNNs),
`conditions` (their CGMA data set), `gan` (the conditional GANs), orchestrated by
`train`; `evaluate` and `explain` read a trained workdir. The command is
`python -m cyclejax.sft train|evaluate|explain`; the config schema `cyclejax.sft.config`.
"""
