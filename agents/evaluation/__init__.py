"""What a trained run does in its environment: seeded episodes, robustness sweeps, saliency stability,
circuit inspection of a run.

- :mod:`.episodes`: closed-loop evaluation of any predictor on seeded episodes, and the metrics.
- :mod:`.robustness`: several runs side by side under perturbation sweeps, with common random numbers.
- :mod:`.saliency_stability`: SSIM of saliency maps between clean and perturbed frames.
- :mod:`.inspection`: a run folder opened as a circuit for :mod:`ncp_control.inspect`.

May import: :mod:`ncp_control` (library), :mod:`ncp_control.envs`, :mod:`ncp_control.agents.runs`.
"""
