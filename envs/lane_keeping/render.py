"""Offscreen MuJoCo rendering for environments whose meshes change between episodes (numpy + mujoco only).

``mujoco.Renderer`` keeps its ``MjrContext`` private, but the lane-keeping world rewrites its road meshes in place
every episode and must re-upload them to the GPU-side (here: Mesa software) buffers with ``mjr_uploadMesh``.
This small class owns one GL context and one ``MjrContext`` and renders any fixed camera of the model into any
viewport up to the model's offscreen buffer size, so one context serves both the observation camera and a larger
human-readable view.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys

os.environ.setdefault("MUJOCO_GL", "egl")
# Mesa's software rasteriser (llvmpipe) otherwise spreads each small frame over one thread per core; rendering in
# the calling thread was as fast or faster for 64x128 frames on one core (0.8 vs 1.4 ms per step measured with an
# earlier, heavier scene) and does not oversubscribe the CPU when many envs run in parallel. Set LP_NUM_THREADS
# yourself to override.
os.environ.setdefault("LP_NUM_THREADS", "0")

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

__all__ = ["OffscreenRenderer"]


def load_triton_before_mesa() -> None:
    """Import Triton, if it is installed, before the first GL context: PyPI's CUDA builds of torch (what a plain
    ``pip install torch`` gives on Linux, and on this project's machines any Python but 3.11) bundle Triton, whose
    native library crashed the process (SIGSEGV) when it was loaded after Mesa's EGL / llvmpipe, as torch does on
    the first optimiser it builds (``torch.optim`` imports ``torch._dynamo``, which imports Triton). Loaded first,
    both work (tests/test_lane_keeping.py drives that order in a fresh process). torch itself is not imported."""
    if "triton" in sys.modules or importlib.util.find_spec("triton") is None:
        return
    importlib.import_module("triton")


def _gl_context_class() -> type:
    """The GL context class for ``MUJOCO_GL`` as it is now (default ``egl``).

    ``mujoco.GLContext`` is chosen when ``mujoco`` is first imported; a program that imported ``mujoco`` before
    ``ncp_control.envs`` (so before ``MUJOCO_GL=egl`` was set) would otherwise get GLFW, which needs a display."""
    backend = os.environ.get("MUJOCO_GL", "egl").lower()
    if backend == "egl":
        from mujoco.egl import GLContext
    elif backend == "osmesa":
        from mujoco.osmesa import GLContext
    else:
        GLContext = mujoco.GLContext
    return GLContext


class OffscreenRenderer:
    """Renders fixed cameras of one model offscreen (no shadows, reflections, skybox or multisampling).

    Textures are sampled nearest-neighbour without mipmaps (MuJoCo uploads them for trilinear filtering): in
    software rendering that made textured asphalt and ground about 3 times cheaper per frame (+0.06 instead of
    +0.18 ms at 64x128, measured); the lane-keeping textures are low-contrast noise, so the aliasing it allows
    at a distance only adds noise.

    Args:
        model: the model; its ``<visual><global offwidth offheight>`` bound the image size.
        max_geom: capacity of the abstract scene.
    """

    def __init__(self, model: mujoco.MjModel, max_geom: int = 100):
        self._model = model
        self._width = int(model.vis.global_.offwidth)
        self._height = int(model.vis.global_.offheight)
        load_triton_before_mesa()
        self._gl = _gl_context_class()(self._width, self._height)
        self._gl.make_current()
        self._context = mujoco.MjrContext(model, mujoco.mjtFontScale.mjFONTSCALE_100)
        mujoco.mjr_setBuffer(mujoco.mjtFramebuffer.mjFB_OFFSCREEN, self._context)
        if self._context.ntexture:
            from OpenGL import GL  # PyOpenGL: a dependency of mujoco's own EGL/OSMesa contexts

            for name, kind in zip(
                self._context.texture[: self._context.ntexture], self._context.textureType[: self._context.ntexture]
            ):
                if kind == mujoco.mjtTexture.mjTEXTURE_2D:
                    GL.glBindTexture(GL.GL_TEXTURE_2D, int(name))
                    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MIN_FILTER, GL.GL_NEAREST)
                    GL.glTexParameteri(GL.GL_TEXTURE_2D, GL.GL_TEXTURE_MAG_FILTER, GL.GL_NEAREST)
            GL.glBindTexture(GL.GL_TEXTURE_2D, 0)
        self._scene = mujoco.MjvScene(model, maxgeom=max_geom)
        flags = mujoco.mjtRndFlag
        for flag in (flags.mjRND_SHADOW, flags.mjRND_REFLECTION, flags.mjRND_SKYBOX):
            self._scene.flags[flag] = 0
        self._option = mujoco.MjvOption()
        self._perturb = mujoco.MjvPerturb()
        self._camera = mujoco.MjvCamera()
        self._camera.type = mujoco.mjtCamera.mjCAMERA_FIXED
        self._buffers: dict[tuple[int, int], np.ndarray] = {}

    def upload_mesh(self, mesh_id: int) -> None:
        """Copy mesh ``mesh_id``'s current vertices/normals/faces from the model to the render context."""
        self._require_open()
        self._gl.make_current()
        mujoco.mjr_uploadMesh(self._model, self._context, mesh_id)

    def render(
        self, data: mujoco.MjData, camera_id: int, height: int, width: int, hidden_groups: tuple[int, ...] = ()
    ) -> np.ndarray:
        """Render camera ``camera_id`` at the state in ``data``.

        Args:
            data: the simulation state (``mj_forward`` or ``mj_step`` must have run since it last changed).
            camera_id: a fixed camera of the model.
            height, width: image size in pixels, at most the offscreen buffer size.
            hidden_groups: geom groups (0-5) not drawn (e.g. the car's body seen from its own dash camera).

        Returns:
            A new (height, width, 3) uint8 RGB array, row 0 at the top.
        """
        self._require_open()
        if not (0 < height <= self._height and 0 < width <= self._width):
            raise ValueError(
                f"image size {height}x{width} must be positive and fit the offscreen buffer "
                f"{self._height}x{self._width} (<visual><global offheight offwidth> in the MJCF)"
            )
        self._gl.make_current()
        geomgroup = self._option.geomgroup
        geomgroup[:] = 1
        for group in hidden_groups:
            geomgroup[group] = 0
        self._camera.fixedcamid = camera_id
        mujoco.mjv_updateScene(
            self._model, data, self._option, self._perturb, self._camera, mujoco.mjtCatBit.mjCAT_ALL, self._scene
        )
        viewport = mujoco.MjrRect(0, 0, width, height)
        mujoco.mjr_render(viewport, self._scene, self._context)
        buffer = self._buffers.get((height, width))
        if buffer is None:
            buffer = self._buffers[(height, width)] = np.empty((height, width, 3), dtype=np.uint8)
        mujoco.mjr_readPixels(buffer, None, viewport, self._context)
        return buffer[::-1].copy()  # OpenGL rows start at the bottom

    def close(self) -> None:
        """Free the render context and the GL context (idempotent)."""
        if self._context is not None:
            self._gl.make_current()  # GLContext.as_current() is MuJoCo 4's; Python 3.10 gets MuJoCo 3.x
            self._context.free()
            self._context = None
        if self._gl is not None:
            self._gl.free()
            self._gl = None

    def _require_open(self) -> None:
        if self._context is None:
            raise RuntimeError("the renderer is closed")

    def __del__(self) -> None:
        try:
            self.close()
        except Exception:  # interpreter shutdown: GL libraries may already be gone
            pass
