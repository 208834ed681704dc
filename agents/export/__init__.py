"""ONNX export of a trained run: one control step per call, runnable without torch.

- :mod:`.steps`: one control step of each policy kind as a plain torch module.
- :mod:`.writer`: writes ``policy.onnx`` and its manifest, and checks them against torch.

May import: :mod:`ncp_control` (library) and :mod:`ncp_control.agents.runs`; onnx and onnxruntime lazily.
"""
