"""Studies: many training runs (models x seeds) and their evaluations, spread over a Ray cluster.

- :mod:`.spec`: study specs read from JSON and expanded into jobs.
- :mod:`.jobs`: the work of one job (train, evaluate, sweep), callable without Ray.
- :mod:`.driver`: runs the jobs on Ray, resumes, moves run folders between nodes.
- :mod:`.reuse`: finished runs of other study folders reused instead of retrained.
- :mod:`.summary`: ``jobs.jsonl`` and the summary across training seeds.

May import: everything in :mod:`ncp_control.agents` but the CLI; Ray only inside :mod:`.driver` and
:mod:`.cluster` (which ``train-rllib`` shares).
"""
