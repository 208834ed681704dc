"""The lane-keeping world: a car on a procedural road, seen through a forward camera or a state vector.

- :mod:`.world`: ``LaneKeepingBase`` (road, car, reward and termination of both envs) and their common manual.
- :mod:`.scene`: the MuJoCo model (scene and vehicle MJCF merged, road meshes, textures, roadside geoms).
- :mod:`.appearance`: the look (``Appearance``) and its domain randomisation.
- :mod:`.camera`: ``LaneKeeping-v0`` (camera image -> steering). :mod:`.state`: ``LaneKeepingState-v0``.
- :mod:`.road`, :mod:`.roadside`, :mod:`.textures`: procedural road geometry, roadside objects, textures
  (numpy only). :mod:`.render`: offscreen rendering of meshes that change between episodes.
- ``assets/``: the scene and vehicle MJCF files.

May import: numpy, mujoco, gymnasium; never torch.
"""
