"""Run folders as data: the files a training command writes and the loaders that read them back.

- :mod:`.files`: atomic JSON, weights-only tensors, the observation normaliser and spaces as data.
- :mod:`.load`: ``config.json`` and :func:`~ncp_control.agents.runs.load.load_run`, which rebuilds any run
  (PPO or imitation) as a predictor without running code from the folder.
- :mod:`.legacy`: module names that run folders of versions up to 0.1 hold, and today's names for them.

May import: numpy, torch, :mod:`ncp_control` (library) and :mod:`ncp_control.agents.errors`; the PPO and
imitation loaders are imported by name when a run of their kind is loaded.
"""
