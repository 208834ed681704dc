"""The lane-keeping world shared by ``LaneKeeping-v0`` (camera) and ``LaneKeepingState-v0`` (state vector).

One implementation of road, car, reward and termination lives here in :class:`LaneKeepingBase`; the two env
modules only define their observation. :data:`WORLD_MANUAL` is the shared part of both user manuals (it is
appended to each env's class docstring). The MuJoCo model is built once per env instance by
:mod:`~ncp_control.envs.lane_keeping.scene`; each episode draws its look
(:mod:`~ncp_control.envs.lane_keeping.appearance`) and road, writes the look into the model, and rewrites the road
and roadside meshes in place before the first frame it draws.

May import: numpy, mujoco, gymnasium, :mod:`ncp_control.checks` and the other modules of this package; never torch.
"""

from __future__ import annotations

import math
import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("MUJOCO_GL", "egl")
os.environ.setdefault("LP_NUM_THREADS", "0")  # see envs/lane_keeping/render.py

import gymnasium as gym  # noqa: E402
import mujoco  # noqa: E402
import numpy as np  # noqa: E402
from gymnasium.utils import EzPickle  # noqa: E402

from ncp_control import checks  # noqa: E402

# Appearance is also looked up here by pickles of envs made before it moved to appearance.py.
from ncp_control.envs.lane_keeping.appearance import Appearance, check_dr_elements, episode_look  # noqa: E402
from ncp_control.envs.lane_keeping.road import Road, RoadConfig, wrap_angle  # noqa: E402
from ncp_control.envs.lane_keeping.roadside import RoadsideLayout, place_roadside, pool_faces, pool_mesh  # noqa: E402
from ncp_control.envs.lane_keeping.scene import (  # noqa: E402
    CAR_GROUP,
    ROAD_MESHES,
    ROADSIDE_GROUP,
    SHOULDER,
    asphalt_texcoords,
    build_model,
    road_meshes,
)
from ncp_control.envs.lane_keeping.textures import ASPHALT_TEXTURES, GROUND_TEXTURES  # noqa: E402

if TYPE_CHECKING:
    from ncp_control.envs.lane_keeping.render import OffscreenRenderer

__all__ = ["LaneKeepingBase", "WORLD_MANUAL", "NOMINAL_DYNAMICS", "DYNAMICS_RANGES", "check_size"]

_PHYSICS_SUBSTEPS = 5  # MuJoCo steps per control step
_START_OFFSET = 10.0  # m of road behind the start position (seen by the chase camera)
_SKY_DISTANCE = 380.0  # m, the sky backdrop's distance ahead of the car (lane_vehicle.xml)
_HEADING_SCALE = math.pi / 8  # rad, heading error that costs the full heading weight
_ROADSIDE_MARGIN = 1.0  # m of free ground between the asphalt's edge and any roadside object
_ROADSIDE_BEHIND = 15.0  # m, roadside slots this far behind the car are recycled for slots ahead
_GUST_TIME_CONSTANT = 2.0  # s, correlation time of the crosswind gusts (Ornstein-Uhlenbeck)
_GUST_STREAM = 0x47555354  # "GUST": spawn key of the gust generator, apart from the road's and the look's streams

#: The dynamics parameters of :meth:`LaneKeepingBase.set_params`, at their nominal values (the env as built).
NOMINAL_DYNAMICS: dict[str, float] = {
    "steering_gain": 1.0,
    "steering_bias": 0.0,
    "steering_lag": 1.0,
    "speed": 1.0,
    "crosswind": 0.0,
    "crosswind_gusts": 0.0,
}
#: Their valid ranges (inclusive).
DYNAMICS_RANGES: dict[str, tuple[float, float]] = {
    "steering_gain": (0.0, 5.0),
    "steering_bias": (-0.1, 0.1),
    "steering_lag": (0.1, 50.0),
    "speed": (0.5, 2.0),
    "crosswind": (-5.0, 5.0),
    "crosswind_gusts": (0.0, 5.0),
}


WORLD_MANUAL = """
    Shared by LaneKeeping-v0 and LaneKeepingState-v0 (``ncp_control.envs.lane_keeping.world.LaneKeepingBase``)
    ------------------------------------------------------------------------------------------
    **World.** A two-lane road drawn per episode from the episode seed: a 20 m straight start, then curves (clothoid
    ramp, constant-curvature arc, clothoid ramp; ``|curvature|`` uniform in [0.01, ``max_curvature``], each curve
    turning 15-90 degrees, turning back once the road heads more than 45 degrees off its start direction) separated
    by 10-50 m straights; asphalt with solid edge lines and a dashed centre line on a grass ground under a sky. The
    car drives in the right lane. Same seed, same road, bit for bit. The semantic geometry is
    ``env.unwrapped.road`` (an ``ncp_control.envs.lane_keeping.road.Road``: ``curvature_at(s)``, ``point_at(s, d)``,
    ``project(x, y) -> (s, d, heading)``); ``s`` is arc length along the centre line and ``d`` the lateral
    coordinate, positive to the left.

    **Vehicle model.** A kinematic bicycle about the rear axle, simulated by MuJoCo: the car body has world slide
    joints x, y and a yaw hinge driven by velocity actuators (``kv = 1e5``, implicit integration) whose targets are
    set every physics step (``5`` per control step) from the bicycle equations
    ``x' = v cos(yaw), y' = v sin(yaw), yaw' = v tan(delta) / wheelbase`` at the mid-step heading. ``delta`` is the
    angle of a steering hinge on the front axle, driven by a position servo (60 rad/s, critically damped) whose
    set-point passes through a first-order filter with time constant ``steering_time_constant`` (MuJoCo actuator
    ``timeconst``). The set-point itself moves toward the commanded angle at most ``max_steering_rate`` rad/s. So a
    command takes effect with lag and rate limit: remembering recent commands helps. Speed is constant
    (``speed``).

    **Action space.** ``Box(-1, 1, (1,), float32)``: steering command as normalised path curvature; the commanded
    wheel angle is ``atan(wheelbase * a * max_steering_curvature)``. Out-of-range values are clipped; NaN or inf
    raise ``ValueError``; a shape other than ``(1,)`` or ``()`` raises ``ValueError``.

    **Rewards** (per step; named terms in ``info`` that sum exactly to the reward, in this order):

    ==================  =============================================================================  ===========
    term                definition                                                                     range
    ==================  =============================================================================  ===========
    reward_progress     ``progress_weight * ds / (speed * dt)``: arc length gained along the centre     ~ +1
                        line, normalised so that driving straight along the lane earns 1 per step
    reward_lateral      ``-lateral_weight * min((lateral_offset / (lane_width / 2))**2, 1)``             [-w, 0]
    reward_heading      ``-heading_weight * min((heading_error / (pi / 8))**2, 1)``                      [-w, 0]
    ==================  =============================================================================  ===========

    **Starting state.** The car starts 10 m after the road's start, on a straight, at the right lane's centre
    plus a lateral offset uniform in ``[-0.25, 0.25]`` m and a heading error uniform in ``[-0.05, 0.05]`` rad,
    with straight wheels and speed ``speed``.

    **Episode end.** Terminated with ``info["is_success"] = False`` when ``|lateral_offset|`` exceeds
    ``max_lateral_offset`` (default half a lane: the car's reference point reached a lane line); terminated with
    ``info["is_success"] = True`` when ``distance_m >= road_length``. Truncation is the registered time limit
    (``max_episode_steps=1000``); with the defaults an episode that stays in lane lasts
    ``road_length / (speed * dt) = 500`` steps.

    **info** (every step; ``reset`` gives the same keys without the ``reward_*`` terms):
    ``lateral_offset_m`` (signed offset of the rear-axle midpoint from the lane centre, left positive),
    ``heading_error_rad`` (car yaw minus road heading, wrapped to [-pi, pi)), ``road_curvature`` (1/m at the car),
    ``distance_m`` (arc length travelled along the road since the start), ``is_success``, ``elapsed_time``
    (simulated seconds since the previous step: ``1 / control_frequency``; 0 at reset), ``steering`` (current wheel
    angle as normalised curvature, the quantity the action commands), ``crosswind_mps`` (the lateral drift of the
    last step, m/s: 0 unless a ``crosswind`` dynamics parameter is set) and the ``reward_*`` terms.

    **Semantic accessors** (on ``env.unwrapped``, used by ``ncp_control.agents.imitation.experts``): ``road``, ``arc_length()`` (m),
    ``lateral_offset()`` (m), ``heading_error()`` (rad), ``car_pose()`` ((x, y, yaw) of the rear-axle midpoint),
    ``steering()``, ``lane_center_offset`` (m), ``appearance`` (the episode's look, an
    ``ncp_control.envs.lane_keeping.appearance.Appearance``), and the car parameters ``speed``, ``wheelbase``,
    ``max_steering_curvature``, ``steering_time_constant``, ``dt``, ``lateral_offset_bound``,
    ``roadside_objects()`` (an ``ncp_control.envs.lane_keeping.roadside.RoadsideLayout`` or None). ``model`` and
    ``data`` are the MuJoCo model and data (``data.warning`` counts MuJoCo warnings).

    **Shared arguments** (keyword only, validated: a bad value raises ``ValueError``, a wrong type ``TypeError``):

    - ``road_length=250.0`` m to drive for success; ``max_curvature=0.04`` 1/m, largest road curvature (radius 25 m);
      ``lane_width=3.5`` m.
    - ``speed=10.0`` m/s; ``control_frequency=20.0`` Hz; ``wheelbase=2.7`` m; ``max_steering_curvature=0.1`` 1/m
      (action 1 = radius 10 m); ``steering_time_constant=0.1`` s; ``max_steering_rate=0.5`` rad/s (wheel angle).
    - ``max_lateral_offset=None`` m (None: ``lane_width / 2``).
    - ``progress_weight=1.0``, ``lateral_weight=0.5``, ``heading_weight=0.5``.
    - ``domain_randomization=False``: ``True`` randomises every element below per episode, from the episode seed
      (a look stream of its own, so the road and start pose of a seed do not change; only ``"geometry"`` changes
      the road, by design); a tuple/list/set of element names randomises only those (an unknown name raises
      ``ValueError``). Without it the look is fixed (grey asphalt, white 0.2 m lines, no textures, no objects):

      - ``"geometry"``: lane width in [3.0, 4.0] m, the road's largest curvature in [0.6, 1.0] x
        ``max_curvature``, line width in [0.12, 0.25] m;
      - ``"colours"``: asphalt, edge and centre lines (white, or a yellow centre line), ground and sky;
      - ``"lighting"``: sun direction and brightness, ambient light;
      - ``"camera"``: dash-camera height (+-0.1 m) and pitch (+-2 deg);
      - ``"textures"``: asphalt texture (none, ``grain``, ``patches``, ``speckle`` or ``streaks``: worn tracks
        along the road), ground texture (none, ``meadow``, ``fields``, ``furrows``), each equally likely
        (``ncp_control.envs.lane_keeping.textures``; textures multiply the colours);
      - ``"objects"``: roadside posts, trees and buildings (``ncp_control.envs.lane_keeping.roadside``): about one every 9 m on random
        sides, each kept at least 1 m off the asphalt (``lane_width + 0.5 + 1.0`` m from the centre line,
        also where the road comes back near itself); 20 are drawn at a time, from 15 m behind the car onwards.
        ``roadside_objects()`` returns the episode's layout.
    - ``render_mode=None | "rgb_array"``; ``render_camera="chase" | "dashcam"``; ``render_height=240``,
      ``render_width=320``: ``render()`` returns a (render_height, render_width, 3) uint8 frame from that camera
      (the chase camera follows 7 m behind the car).

    **Dynamics parameters** (model mismatch; ``get_params()`` / ``set_params(**params)`` on ``env.unwrapped``, in
    the manner of RRLS; what the ``steering_gain``, ``steering_bias``, ``steering_lag``, ``speed``, ``crosswind`` and
    ``crosswind_gusts`` perturbations of ``ncp_control.envs.perturbations`` set). They hold until set again (resets
    keep them) and take effect at once; at their nominal values the env is bit for bit the unperturbed one:

    - ``steering_gain=1.0`` (in [0, 5]): multiplies the commanded curvature (0: the wheels stay straight);
    - ``steering_bias=0.0`` 1/m (in [-0.1, 0.1]): added to the commanded curvature (a miscalibrated rack);
    - ``steering_lag=1.0`` (in [0.1, 50]): multiplies the steering filter's time constant;
    - ``speed=1.0`` (in [0.5, 2]): multiplies the car's speed (the progress reward stays normalised by the nominal
      speed, so a finished road is worth the same; ``LaneKeepingState-v0``'s speed entry keeps showing the nominal
      speed, and above 1 its lateral offset can pass the observation bound on the step that ends an episode);
    - ``crosswind=0.0`` m/s (in [-5, 5]): a lateral drift of the car, perpendicular to its heading, positive to
      the left;
    - ``crosswind_gusts=0.0`` m/s (in [0, 5]): the standard deviation of gusts added to it, an Ornstein-Uhlenbeck
      process with a 2 s correlation time drawn from the episode seed (one draw per step, whatever the policy does).

    The car parameters above (``speed``, ``steering_time_constant``, ...) stay the nominal model's.

    **Version history.** v0: initial version; dynamics parameters added within v0 (nominal values unchanged); textures, roadside objects and element subsets of
    ``domain_randomization`` added later within v0 (the default look and every road are unchanged, bit for bit).
"""


def check_size(name: str, value: Any) -> int:
    """An image side in pixels (``render_height``, ``image_width``, ...): an integer in [8, 2048]."""
    return checks.int_in_range(name, value, 8, 2048, hint="pixels")


class LaneKeepingBase(gym.Env, EzPickle):
    """Road, car, reward and termination of the lane-keeping envs; subclasses define the observation.

    A subclass sets ``self.observation_space`` and implements :meth:`_observation`; it may pass
    ``observation_camera=(height, width)`` so the offscreen buffer is large enough. See :data:`WORLD_MANUAL`.
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        *,
        road_length: float = 250.0,
        max_curvature: float = 0.04,
        lane_width: float = 3.5,
        speed: float = 10.0,
        control_frequency: float = 20.0,
        wheelbase: float = 2.7,
        max_steering_curvature: float = 0.1,
        steering_time_constant: float = 0.1,
        max_steering_rate: float = 0.5,
        max_lateral_offset: float | None = None,
        progress_weight: float = 1.0,
        lateral_weight: float = 0.5,
        heading_weight: float = 0.5,
        domain_randomization: bool | tuple[str, ...] | list[str] | frozenset[str] = False,
        render_mode: str | None = None,
        render_camera: str = "chase",
        render_height: int = 240,
        render_width: int = 320,
        observation_camera: tuple[int, int] | None = None,
    ):
        self._road_length = checks.positive_real("road_length", road_length)
        self._max_curvature = checks.positive_real("max_curvature", max_curvature)
        self._lane_width = checks.positive_real("lane_width", lane_width)
        self._speed = checks.positive_real("speed", speed)
        self._control_frequency = checks.positive_real("control_frequency", control_frequency)
        self._wheelbase = checks.positive_real("wheelbase", wheelbase)
        self._max_steering_curvature = checks.positive_real("max_steering_curvature", max_steering_curvature)
        self._steering_time_constant = checks.positive_real("steering_time_constant", steering_time_constant)
        self._max_steering_rate = checks.positive_real("max_steering_rate", max_steering_rate)
        self._max_lateral_offset = (
            None if max_lateral_offset is None else checks.positive_real("max_lateral_offset", max_lateral_offset)
        )
        self._progress_weight = checks.non_negative_real("progress_weight", progress_weight)
        self._lateral_weight = checks.non_negative_real("lateral_weight", lateral_weight)
        self._heading_weight = checks.non_negative_real("heading_weight", heading_weight)
        self._dr_elements = check_dr_elements(domain_randomization)
        self._domain_randomization = bool(self._dr_elements)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(f"render_mode must be None or 'rgb_array', got {render_mode!r}")
        self.render_mode = render_mode
        if render_camera not in ("chase", "dashcam"):
            raise ValueError(f"render_camera must be 'chase' or 'dashcam', got {render_camera!r}")
        self._render_camera = render_camera
        self._render_size = (check_size("render_height", render_height), check_size("render_width", render_width))
        if self._max_curvature >= self._max_steering_curvature:
            raise ValueError(
                f"max_curvature ({max_curvature}) must be below max_steering_curvature "
                f"({max_steering_curvature}) or the car cannot follow the road"
            )
        if self._max_steering_curvature * self._wheelbase >= 10.0:
            raise ValueError("max_steering_curvature * wheelbase must be < 10 (wheel angle below ~84 degrees)")

        self._build_simulation(observation_camera)
        self._init_episode_state()
        self._params = dict(NOMINAL_DYNAMICS)
        self._gust = 0.0  # m/s, the gust's current value
        self._wind = 0.0  # m/s, the crosswind of the last step (constant part and gust)
        self._gust_rng = np.random.default_rng([0, _GUST_STREAM])

    def _build_simulation(self, observation_camera: tuple[int, int] | None) -> None:
        """Road config, MuJoCo model (offscreen buffer also large enough for ``observation_camera``) and data,
        cached ids, action space."""
        self.dt = 1.0 / self._control_frequency
        self._road_config = RoadConfig(
            length=_START_OFFSET + self._road_length,
            max_curvature=self._max_curvature,
            min_curvature=min(0.01, self._max_curvature),
        )
        offscreen = self._render_size
        if observation_camera is not None:
            offscreen = (max(offscreen[0], observation_camera[0]), max(offscreen[1], observation_camera[1]))
        self.model = build_model(
            self._road_config,
            timestep=self.dt / _PHYSICS_SUBSTEPS,
            wheelbase=self._wheelbase,
            steering_time_constant=self._steering_time_constant,
            offscreen=offscreen,
        )
        self.data = mujoco.MjData(self.model)
        self._timestep = float(self.model.opt.timestep)
        self._cache_ids()
        # created on first use (the state env never renders unless asked)
        self._renderer: OffscreenRenderer | None = None

        self.metadata = dict(self.metadata, render_fps=self._control_frequency)
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(1,), dtype=np.float32)

    def _init_episode_state(self) -> None:
        """The per-episode state before the first reset (reset sets it): a straight road, the default look."""
        self.road: Road = self.road_placeholder()
        self._appearance = Appearance(lane_width=self._lane_width)
        self._scene_stale = True
        self._roadside_seed: int | None = None
        self._roadside: RoadsideLayout | None = None
        self._roadside_window = -1
        self._s = _START_OFFSET
        self._d = self.road.lane_center_offset
        self._road_heading = 0.0
        self._setpoint = 0.0  # steering set-point (rad) after the rate limiter
        self._last_command = 0.0  # last action after clipping

    # ------------------------------------------------------------------ model handles
    def _cache_ids(self) -> None:
        m = self.model
        obj = mujoco.mjtObj

        def jid(name: str) -> int:
            return int(m.jnt_qposadr[mujoco.mj_name2id(m, obj.mjOBJ_JOINT, name)])

        def vid(name: str) -> int:
            return int(m.jnt_dofadr[mujoco.mj_name2id(m, obj.mjOBJ_JOINT, name)])

        self._qx, self._qy, self._qyaw, self._qsteer = (jid(n) for n in ("car_x", "car_y", "car_yaw", "steer"))
        self._vx, self._vy, self._vyaw, self._vsteer = (vid(n) for n in ("car_x", "car_y", "car_yaw", "steer"))
        self._a_dx, self._a_dy, self._a_dyaw, self._a_steer = (
            mujoco.mj_name2id(m, obj.mjOBJ_ACTUATOR, n) for n in ("drive_x", "drive_y", "drive_yaw", "steer")
        )
        self._steer_act = int(m.actuator_actadr[self._a_steer])
        self._mesh_ids = {n: mujoco.mj_name2id(m, obj.mjOBJ_MESH, n) for n in ROAD_MESHES}
        self._road_geom_ids = {n: mujoco.mj_name2id(m, obj.mjOBJ_GEOM, n) for n in ROAD_MESHES}
        placeholder = road_meshes(self.road_placeholder(), 0.2)
        for name, mesh_id in self._mesh_ids.items():
            if m.mesh_vertnum[mesh_id] != len(placeholder[name].vertices) or m.mesh_facenum[mesh_id] != len(
                placeholder[name].faces
            ):
                raise RuntimeError(
                    f"MuJoCo changed the size of mesh {name!r} when compiling; in-place road "
                    "updates need the sizes to stay fixed"
                )
            if name == "road_surface":  # texture coordinates are written per vertex, in vertex order
                face = slice(m.mesh_faceadr[mesh_id], m.mesh_faceadr[mesh_id] + m.mesh_facenum[mesh_id])
                if m.mesh_texcoordnum[mesh_id] != m.mesh_vertnum[mesh_id] or not np.array_equal(
                    m.mesh_facetexcoord[face], m.mesh_face[face]
                ):
                    raise RuntimeError("MuJoCo reordered the road's texture coordinates when compiling")
            geom = self._road_geom_ids[name]
            m.geom_pos[geom] = 0.0  # vertices are written in world coordinates
            m.geom_quat[geom] = (1.0, 0.0, 0.0, 0.0)
        self._ground_geom = mujoco.mj_name2id(m, obj.mjOBJ_GEOM, "ground")
        self._materials = {
            n: mujoco.mj_name2id(m, obj.mjOBJ_MATERIAL, n)
            for n in ("asphalt", "edge_line", "centre_line", "ground", "sky")
        }
        for surface, names in (("asphalt", ASPHALT_TEXTURES), ("ground", GROUND_TEXTURES)):
            for name in names:
                self._materials[f"{surface}_{name}"] = mujoco.mj_name2id(m, obj.mjOBJ_MATERIAL, f"{surface}_{name}")
        self._roadside_mesh = mujoco.mj_name2id(m, obj.mjOBJ_MESH, "roadside")
        mesh_id, faces = self._roadside_mesh, pool_faces()
        face = slice(m.mesh_faceadr[mesh_id], m.mesh_faceadr[mesh_id] + m.mesh_facenum[mesh_id])
        if not (
            m.mesh_vertnum[mesh_id] == m.mesh_normalnum[mesh_id] == m.mesh_texcoordnum[mesh_id] == faces.max() + 1
            and np.array_equal(m.mesh_face[face], faces)
            and np.array_equal(m.mesh_facenormal[face], faces)
            and np.array_equal(m.mesh_facetexcoord[face], faces)
        ):
            raise RuntimeError("MuJoCo changed the roadside mesh when compiling; in-place updates need it unchanged")
        geom = mujoco.mj_name2id(m, obj.mjOBJ_GEOM, "roadside")
        m.geom_pos[geom] = 0.0  # vertices are written in world coordinates
        m.geom_quat[geom] = (1.0, 0.0, 0.0, 0.0)
        self._sun = mujoco.mj_name2id(m, obj.mjOBJ_LIGHT, "sun")
        self._dashcam = mujoco.mj_name2id(m, obj.mjOBJ_CAMERA, "dashcam")
        self._chase = mujoco.mj_name2id(m, obj.mjOBJ_CAMERA, "chase")
        self._dashcam_pos = m.cam_pos[self._dashcam].copy()
        self._dashcam_quat = m.cam_quat[self._dashcam].copy()

    def road_placeholder(self) -> Road:
        """A straight road with this env's mesh sizes (used before the first reset)."""
        c = self._road_config
        return Road(np.zeros(c.num_samples), c.ds, c.length, self._lane_width)

    # ------------------------------------------------------------------ pickling
    #: Per-episode attributes a pickle carries besides the constructor arguments and the MuJoCo state.
    _EPISODE_ATTRIBUTES = (
        "_np_random",
        "_np_random_seed",
        "road",
        "_appearance",
        "_roadside_seed",
        "_s",
        "_d",
        "_road_heading",
        "_setpoint",
        "_last_command",
        "_s_start",
        "_gust",
        "_gust_rng",
        "_wind",
    )

    def __getstate__(self) -> dict[str, Any]:
        """Constructor arguments (``EzPickle``) plus, after a reset, the episode: RNG, road, look, car state and
        MuJoCo's full physics state, so an unpickled env continues the episode step for step."""
        state = EzPickle.__getstate__(self)
        state["_dynamics"] = dict(self._params)
        if hasattr(self, "_s_start"):
            m, d = self.model, self.data
            physics = np.empty(mujoco.mj_stateSize(m, mujoco.mjtState.mjSTATE_FULLPHYSICS))
            mujoco.mj_getState(m, d, physics, mujoco.mjtState.mjSTATE_FULLPHYSICS)
            episode = {name: getattr(self, name) for name in self._EPISODE_ATTRIBUTES if hasattr(self, name)}
            state["_episode"] = dict(episode, _physics=physics, _ctrl=d.ctrl.copy())
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        episode = state.get("_episode")
        EzPickle.__setstate__(self, {k: v for k, v in state.items() if k not in ("_episode", "_dynamics")})
        self.set_params(**state.get("_dynamics", {}))
        if episode is None:
            return
        episode = dict(episode)
        physics, ctrl = episode.pop("_physics"), episode.pop("_ctrl")
        for name, value in episode.items():
            setattr(self, name, value)
        self._apply_look()  # the model's ground, colours, light and camera pose for this episode's look
        m, d = self.model, self.data
        mujoco.mj_setState(m, d, physics, mujoco.mjtState.mjSTATE_FULLPHYSICS)
        d.ctrl[:] = ctrl
        mujoco.mj_forward(m, d)
        self._scene_stale = True  # road meshes and roadside objects are rewritten before the next frame
        self._roadside = None
        self._roadside_window = -1

    # ------------------------------------------------------------------ gymnasium API
    def reset(self, *, seed: int | None = None, options: dict | None = None) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        # independent streams: the appearance draws (domain randomisation on or off) do not shift the road's or the
        # start pose's random numbers
        road_seed, look_seed, start_seed = (int(x) for x in self.np_random.integers(0, 2**63 - 1, size=3))
        look, self._roadside_seed = episode_look(look_seed, self._dr_elements, Appearance(lane_width=self._lane_width))
        config = self._road_config
        if look.curvature_scale != 1.0:
            config = RoadConfig(
                length=config.length,
                max_curvature=config.max_curvature * look.curvature_scale,
                min_curvature=min(config.min_curvature, config.max_curvature * look.curvature_scale),
            )
        self.road = Road.generate(np.random.default_rng(road_seed), config, lane_width=look.lane_width)
        self._appearance = look
        self._apply_look()
        self._scene_stale = True  # road meshes: written before the next frame is drawn (never, if none is)
        self._roadside = None  # drawn on first use (roadside_objects(); envs that never render skip it)
        self._roadside_window = -1  # first roadside slot on the pool geoms (-1: not placed yet)

        start_rng = np.random.default_rng(start_seed)
        offset = start_rng.uniform(-0.25, 0.25)
        yaw_error = start_rng.uniform(-0.05, 0.05)
        s0 = _START_OFFSET
        x, y = self.road.point_at(s0, self.road.lane_center_offset + offset)
        yaw = self.road.heading_at(s0) + yaw_error

        m, d = self.model, self.data
        mujoco.mj_resetData(m, d)
        d.qpos[self._qx], d.qpos[self._qy], d.qpos[self._qyaw] = x, y, yaw
        speed = self._speed * self._params["speed"]
        d.qvel[self._vx], d.qvel[self._vy] = speed * math.cos(yaw), speed * math.sin(yaw)
        self._gust_rng = np.random.default_rng([start_seed, _GUST_STREAM])
        self._gust = 0.0
        self._wind = self._params["crosswind"]
        self._setpoint = 0.0
        self._last_command = 0.0
        d.ctrl[self._a_steer] = 0.0
        d.act[self._steer_act] = 0.0
        d.ctrl[self._a_dx], d.ctrl[self._a_dy] = d.qvel[self._vx], d.qvel[self._vy]
        mujoco.mj_forward(m, d)
        self._s, self._d, self._road_heading = self.road.project(x, y, s_hint=s0)
        self._s_start = s0
        info = self._info(elapsed=0.0, success=False)
        return self._observation(), info

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        command = self._validate_action(action)
        self._last_command = command
        params = self._params
        # the nominal expression's order of operations (bit for bit): wheelbase * command * max curvature
        commanded = params["steering_gain"] * command
        target = math.atan(
            self._wheelbase * commanded * self._max_steering_curvature + self._wheelbase * params["steering_bias"]
        )
        max_change = self._max_steering_rate * self.dt
        self._setpoint += min(max(target - self._setpoint, -max_change), max_change)
        wind = self._wind = params["crosswind"] + self._next_gust()
        m, d = self.model, self.data
        ctrl, qpos = d.ctrl, d.qpos
        ctrl[self._a_steer] = self._setpoint
        # bicycle model: velocity targets at the mid-step heading, refreshed every physics step; a crosswind adds a
        # drift perpendicular to the heading (left positive)
        h, v, inv_l = self._timestep, self._speed * params["speed"], 1.0 / self._wheelbase
        a_dx, a_dy, a_dyaw, q_yaw, q_steer = self._a_dx, self._a_dy, self._a_dyaw, self._qyaw, self._qsteer
        for _ in range(_PHYSICS_SUBSTEPS):
            rate = v * math.tan(qpos[q_steer]) * inv_l
            mid = qpos[q_yaw] + 0.5 * rate * h
            ctrl[a_dx] = v * math.cos(mid)
            ctrl[a_dy] = v * math.sin(mid)
            if wind:
                ctrl[a_dx] -= wind * math.sin(mid)
                ctrl[a_dy] += wind * math.cos(mid)
            ctrl[a_dyaw] = rate
            mujoco.mj_step(m, d)

        s_prev = self._s
        self._s, self._d, self._road_heading = self.road.project(
            float(qpos[self._qx]), float(qpos[self._qy]), s_hint=s_prev
        )
        lateral = self._d - self.road.lane_center_offset
        heading_error = wrap_angle(float(qpos[self._qyaw]) - self._road_heading)
        half_lane = 0.5 * self.road.lane_width
        terms = {
            "reward_progress": self._progress_weight * (self._s - s_prev) / (self._speed * self.dt),
            "reward_lateral": -self._lateral_weight * min((lateral / half_lane) ** 2, 1.0),
            "reward_heading": -self._heading_weight * min((heading_error / _HEADING_SCALE) ** 2, 1.0),
        }
        reward = 0.0
        for value in terms.values():  # the documented order; tests re-add info's terms in the same order
            reward += value
        limit = half_lane if self._max_lateral_offset is None else self._max_lateral_offset
        left_lane = abs(lateral) > limit
        success = (not left_lane) and self._s - self._s_start >= self._road_length
        terminated = left_lane or success
        info = self._info(elapsed=self.dt, success=success, lateral=lateral, heading_error=heading_error)
        info.update(terms)
        return self._observation(), reward, terminated, False, info

    def render(self) -> np.ndarray | None:  # type: ignore[override,unused-ignore]  # (Gymnasium 1.2 typing)
        if self.render_mode is None:
            gym.logger.warn("render() called without render_mode; create the env with render_mode='rgb_array'")
            return None
        camera = self._chase if self._render_camera == "chase" else self._dashcam
        hidden = () if self._render_camera == "chase" else (CAR_GROUP,)
        return self._render_camera_image(camera, *self._render_size, hidden)

    def close(self) -> None:
        if self._renderer is not None:
            self._renderer.close()
            self._renderer = None

    # ------------------------------------------------------------------ dynamics parameters
    def get_params(self) -> dict[str, float]:
        """The dynamics parameters now in force (see "Dynamics parameters" in the class docstring)."""
        return dict(self._params)

    def set_params(self, **params: float) -> None:
        """Set dynamics parameters by name (the others keep their values); they hold until set again.

        Raises:
            ValueError: an unknown name (the message lists the valid ones) or a value outside its range.
            TypeError: a value that is not a real number.
        """
        checked = checks.named_reals("dynamics parameter", params, DYNAMICS_RANGES, owner="the lane-keeping envs")
        self._params.update(checked)
        if "steering_lag" in checked:
            lag = self._steering_time_constant * self._params["steering_lag"]
            self.model.actuator_dynprm[self._a_steer, 0] = lag

    def _next_gust(self) -> float:
        """The crosswind gust of this step (m/s): an Ornstein-Uhlenbeck step, one normal draw per step."""
        sigma = self._params["crosswind_gusts"]
        draw = self._gust_rng.standard_normal()
        if sigma == 0.0:
            self._gust = 0.0
            return 0.0
        decay = math.exp(-self.dt / _GUST_TIME_CONSTANT)
        self._gust = decay * self._gust + sigma * math.sqrt(1.0 - decay * decay) * draw
        return self._gust

    # ------------------------------------------------------------------ semantic accessors
    @property
    def speed(self) -> float:
        """Car speed (m/s)."""
        return self._speed

    @property
    def wheelbase(self) -> float:
        """Distance between the axles (m)."""
        return self._wheelbase

    @property
    def steering_time_constant(self) -> float:
        """Lag (s) of the steering actuator's first-order filter."""
        return self._steering_time_constant

    @property
    def max_steering_curvature(self) -> float:
        """Path curvature (1/m) commanded by action 1."""
        return self._max_steering_curvature

    @property
    def lateral_offset_bound(self) -> float:
        """Largest |lateral offset| (m) an observation can show: the termination margin (for the widest lane the
        env can draw) plus one step of travel."""
        if self._max_lateral_offset is not None:
            margin = self._max_lateral_offset
        else:
            margin = 0.5 * (Appearance.LANE_WIDTH_RANGE[1] if "geometry" in self._dr_elements else self._lane_width)
        return margin + self._speed * self.dt

    @property
    def lane_center_offset(self) -> float:
        """Lateral coordinate (m, left positive) of the driving lane's centre relative to the road centre line."""
        return self.road.lane_center_offset

    @property
    def appearance(self) -> Appearance:
        """This episode's look (the fixed default look where domain randomisation does not change it)."""
        return self._appearance

    def arc_length(self) -> float:
        """Arc length (m) along the road centre line of the car's projection."""
        return self._s

    def lateral_offset(self) -> float:
        """Signed offset (m, left positive) of the rear-axle midpoint from the lane centre."""
        return self._d - self.road.lane_center_offset

    def heading_error(self) -> float:
        """Car yaw minus road heading (rad), wrapped to [-pi, pi)."""
        return wrap_angle(float(self.data.qpos[self._qyaw]) - self._road_heading)

    def car_pose(self) -> tuple[float, float, float]:
        """(x, y, yaw) of the rear-axle midpoint in the world frame (m, m, rad unwrapped)."""
        q = self.data.qpos
        return float(q[self._qx]), float(q[self._qy]), float(q[self._qyaw])

    def steering(self) -> float:
        """Current front-wheel angle expressed as normalised curvature (the action's unit)."""
        return math.tan(float(self.data.qpos[self._qsteer])) / (self._wheelbase * self._max_steering_curvature)

    def last_command(self) -> float:
        """The last action after clipping (0 after reset)."""
        return self._last_command

    # ------------------------------------------------------------------ internals
    def _observation(self) -> np.ndarray:
        raise NotImplementedError

    def _validate_action(self, action: Any) -> float:
        try:
            a = np.asarray(action, dtype=np.float64)
        except (TypeError, ValueError) as err:
            raise TypeError(f"action must be a float array of shape (1,), got {action!r}") from err
        if a.shape not in ((1,), ()):
            raise ValueError(f"action must have shape (1,) (or be a scalar), got shape {a.shape}")
        value = float(a.reshape(()) if a.shape == () else a[0])
        if not math.isfinite(value):
            raise ValueError(f"action must be finite, got {value}; NaN/inf steering commands are rejected")
        return min(max(value, -1.0), 1.0)

    def _info(
        self, *, elapsed: float, success: bool, lateral: float | None = None, heading_error: float | None = None
    ) -> dict[str, Any]:
        return {
            "lateral_offset_m": self.lateral_offset() if lateral is None else lateral,
            "heading_error_rad": self.heading_error() if heading_error is None else heading_error,
            "road_curvature": float(self.road.curvature_at(self._s)),
            "distance_m": self._s - self._s_start,
            "is_success": success,
            "elapsed_time": elapsed,
            "steering": self.steering(),
            "crosswind_mps": self._wind,
        }

    def _apply_look(self) -> None:
        """Write this episode's ground, colours, sky, light and camera pose into the model. Must run before
        ``mj_forward`` (the kinematics place the ground, light and camera in ``data``)."""
        m, look = self.model, self._appearance
        xmin, ymin, xmax, ymax = self.road.bounds(margin=_SKY_DISTANCE + 50.0)  # ground reaches the backdrop
        m.geom_pos[self._ground_geom] = (0.5 * (xmin + xmax), 0.5 * (ymin + ymax), -0.05)
        m.geom_size[self._ground_geom] = (0.5 * (xmax - xmin), 0.5 * (ymax - ymin), 0.05)
        for name in ("edge_line", "centre_line"):
            m.mat_rgba[self._materials[name]] = getattr(look, name)
        for surface, texture in (("asphalt", look.asphalt_texture), ("ground", look.ground_texture)):
            material = self._materials[surface if texture is None else f"{surface}_{texture}"]
            m.geom_matid[self._ground_geom if surface == "ground" else self._road_geom_ids["road_surface"]] = material
            m.mat_rgba[material] = getattr(look, surface)
        # the sky's emission is 20 times its rgba and the lights add about one more unit (lane_scene.xml)
        sky = self._materials["sky"]
        m.mat_rgba[sky, :3] = np.asarray(look.sky[:3]) / (m.mat_emission[sky] + 1.0)
        m.light_diffuse[self._sun] = look.sun_diffuse
        m.light_dir[self._sun] = np.asarray(look.sun_dir) / np.linalg.norm(look.sun_dir)
        m.vis.headlight.ambient[:] = look.ambient
        m.cam_pos[self._dashcam] = self._dashcam_pos + (0.0, 0.0, look.camera_height)
        pitch = np.array([math.cos(0.5 * look.camera_pitch), 0.0, math.sin(0.5 * look.camera_pitch), 0.0])
        # rotate about the body's y axis (positive = pitch down for a camera looking along +x)
        out = np.empty(4)
        mujoco.mju_mulQuat(out, pitch, self._dashcam_quat)
        m.cam_quat[self._dashcam] = out

    def _write_road_meshes(self, renderer: OffscreenRenderer) -> None:
        """Write this episode's road meshes into the model and upload them to the render context. Deferred from
        ``reset`` to the first frame, so envs that never render skip it (about 2 ms)."""
        self._scene_stale = False
        m = self.model
        for name, mesh in road_meshes(self.road, self._appearance.line_width).items():
            mesh_id = self._mesh_ids[name]
            adr, num = m.mesh_vertadr[mesh_id], m.mesh_vertnum[mesh_id]
            m.mesh_vert[adr : adr + num] = mesh.vertices
            m.mesh_normal[m.mesh_normaladr[mesh_id] : m.mesh_normaladr[mesh_id] + m.mesh_normalnum[mesh_id]] = (0, 0, 1)
            if name == "road_surface":
                adr = m.mesh_texcoordadr[mesh_id]
                uv = asphalt_texcoords(self.road)
                m.mesh_texcoord[adr : adr + len(uv)] = uv
            renderer.upload_mesh(mesh_id)

    def _render_camera_image(self, camera_id: int, height: int, width: int, hidden: tuple[int, ...]) -> np.ndarray:
        renderer = self._renderer
        if renderer is None:
            from ncp_control.envs.lane_keeping.render import OffscreenRenderer

            renderer = self._renderer = OffscreenRenderer(self.model)
        if self._scene_stale:
            self._write_road_meshes(renderer)
        if self._roadside_seed is None:
            hidden = (*hidden, ROADSIDE_GROUP)
        else:
            self._place_roadside_geoms(renderer)
        return renderer.render(self.data, camera_id, height, width, hidden)

    def roadside_objects(self) -> RoadsideLayout | None:
        """This episode's roadside objects (``ncp_control.envs.lane_keeping.roadside.RoadsideLayout``: every slot along the road, in world
        coordinates), or None when they are not randomised. Drawn on first use from the episode's look stream."""
        if self._roadside is None and self._roadside_seed is not None:
            clearance = self.road.lane_width + SHOULDER + _ROADSIDE_MARGIN
            self._roadside = place_roadside(np.random.default_rng(self._roadside_seed), self.road, clearance)
        return self._roadside

    def _place_roadside_geoms(self, renderer: OffscreenRenderer) -> None:
        """Show the pool's worth of roadside slots from just behind the car onwards (``ncp_control.envs.lane_keeping.roadside.pool_mesh``):
        rewrite the roadside mesh and upload it, only when the first slot shown changes."""
        layout = self.roadside_objects()
        if layout is None:
            raise RuntimeError("roadside geoms are placed only in episodes that randomise the roadside")
        first = int(np.searchsorted(layout.s, self._s - _ROADSIDE_BEHIND))
        if first == self._roadside_window:
            return
        self._roadside_window = first
        m, mesh_id = self.model, self._roadside_mesh
        vertices, normals, texcoords = pool_mesh(layout, first)
        m.mesh_vert[m.mesh_vertadr[mesh_id] : m.mesh_vertadr[mesh_id] + len(vertices)] = vertices
        m.mesh_normal[m.mesh_normaladr[mesh_id] : m.mesh_normaladr[mesh_id] + len(normals)] = normals
        m.mesh_texcoord[m.mesh_texcoordadr[mesh_id] : m.mesh_texcoordadr[mesh_id] + len(texcoords)] = texcoords
        renderer.upload_mesh(mesh_id)
