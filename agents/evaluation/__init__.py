"""What a trained run does in its environment: seeded episodes, robustness sweeps, saliency stability,
circuit inspection of a run.

- :mod:`.episodes`: closed-loop evaluation of any predictor on seeded episodes, and the metrics.
- :mod:`.robustness`: several runs side by side under perturbation sweeps, with common random numbers (the
  sweep: arguments, models, plan); :mod:`.robustness_workers` runs its tasks, :mod:`.robustness_results` holds
  and writes its tables, CSV, JSON and plot.
- :mod:`.intervals`: confidence intervals on a mean over episodes or seeds and on a rate of episodes.
- :mod:`.saliency_stability`: SSIM of saliency maps between clean and perturbed frames.
- :mod:`.run_inspection`: a run folder opened as a circuit and handed to the inspection library
  :mod:`ncp_control.inspect` (what ``ncp-control inspect`` calls).

May import: :mod:`ncp_control` (library), :mod:`ncp_control.envs`, :mod:`ncp_control.agents.runs`.
"""
