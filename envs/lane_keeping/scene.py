"""The lane-keeping MJCF scene: road meshes, the merged scene and vehicle model, textures and roadside geoms.

How the MuJoCo model is built: ``assets/lane_scene.xml`` (ground, sky, light, road-mesh placeholders) and
``assets/lane_vehicle.xml`` (the car) are merged once per env instance with the road meshes sized for the
configured road length (:func:`build_model`). Every road drawn from the same
:class:`~ncp_control.envs.lane_keeping.road.RoadConfig` has the same number of vertices, so a new episode rewrites
the vertices in place (``model.mesh_vert``, :func:`road_meshes`) and re-uploads them to the render context (~1 ms)
instead of recompiling the model and rebuilding the render context (~130 ms measured). For domain randomisation
the model also holds textured variants of the asphalt and ground materials
(:mod:`~ncp_control.envs.lane_keeping.textures`) and one roadside mesh
(:mod:`~ncp_control.envs.lane_keeping.roadside`) rewritten the same way; without it the extra materials are unused
and the roadside geom sits in a hidden geom group (:data:`ROADSIDE_GROUP`).

May import: numpy, mujoco, the standard library and the numpy-only modules of this package (road, roadside,
textures); never gymnasium or torch.
"""

from __future__ import annotations

import os
import xml.etree.ElementTree as ET
from importlib import resources

os.environ.setdefault("MUJOCO_GL", "egl")  # MuJoCo picks its GL backend when first imported
os.environ.setdefault("LP_NUM_THREADS", "0")  # see envs/lane_keeping/render.py

import mujoco  # noqa: E402
import numpy as np  # noqa: E402

from ncp_control.envs.lane_keeping.road import Mesh, Road, RoadConfig  # noqa: E402
from ncp_control.envs.lane_keeping.roadside import PALETTE, PALETTE_SIDE, pool_faces, pool_mesh  # noqa: E402
from ncp_control.envs.lane_keeping.textures import (  # noqa: E402
    ASPHALT_TEXTURES,
    GROUND_TEXTURES,
    TEXTURE_SIZE,
    make_texture,
)

__all__ = ["ROAD_MESHES", "CAR_GROUP", "ROADSIDE_GROUP", "SHOULDER", "road_meshes", "asphalt_texcoords", "build_model"]

#: Names of the road's meshes (and of the geoms that show them), in the order of :func:`road_meshes`.
ROAD_MESHES = ("road_surface", "left_edge", "right_edge", "centre_dashes")
CAR_GROUP = 1  # geom group of the car's own body (hidden from the dash camera)
ROADSIDE_GROUP = 2  # geom group of the roadside objects (not drawn unless they are randomised)
SHOULDER = 0.5  # m of asphalt outside each edge line
_DASH, _GAP = 3.0, 6.0  # m, centre-line dash pattern
_MESH_STRIDE = 4  # road strips use every 4th centre-line sample (2 m chords): 4x fewer triangles to draw
_ASPHALT_TILE = 4.0  # m, one asphalt texture tile (across and along the road)
# ground textures are mapped in world x/y: texture repeats per metre (MuJoCo texuniform)
_GROUND_REPEAT = {"meadow": 0.25, "fields": 0.02, "furrows": 0.1}


def road_meshes(road: Road, line_width: float) -> dict[str, Mesh]:
    """The four road meshes: asphalt, both edge lines, dashed centre line (fixed sizes for a road config)."""
    w = road.lane_width
    return {
        "road_surface": road.strip_mesh(w + SHOULDER, -w - SHOULDER, 0.01, _MESH_STRIDE),
        "left_edge": road.strip_mesh(w + 0.5 * line_width, w - 0.5 * line_width, 0.02, _MESH_STRIDE),
        "right_edge": road.strip_mesh(-w + 0.5 * line_width, -w - 0.5 * line_width, 0.02, _MESH_STRIDE),
        "centre_dashes": road.dashed_mesh(0.0, line_width, _DASH, _GAP, 0.02),
    }


def _read_asset(name: str) -> ET.Element:
    return ET.fromstring(resources.files("ncp_control.envs.lane_keeping").joinpath("assets").joinpath(name).read_text())


def _find(parent: ET.Element, path: str) -> ET.Element:
    """``parent.find(path)`` for an element the bundled MJCF assets always hold."""
    element = parent.find(path)
    if element is None:
        raise ValueError(f"the lane-keeping MJCF assets lack the element {path!r}")
    return element


def build_model(
    config: RoadConfig, *, timestep: float, wheelbase: float, steering_time_constant: float, offscreen: tuple[int, int]
) -> mujoco.MjModel:
    """Merge scene and vehicle MJCF, size the road meshes for ``config`` and compile.

    Args:
        offscreen: (height, width) of the offscreen buffer: the largest image any camera will render.
    """
    scene = _read_asset("lane_scene.xml")
    _merge_vehicle(scene, _read_asset("lane_vehicle.xml"))
    _find(scene, "option").set("timestep", repr(timestep))
    offscreen_el = _find(scene, "visual/global")
    offscreen_el.set("offheight", str(offscreen[0]))
    offscreen_el.set("offwidth", str(offscreen[1]))
    _find(scene, ".//body[@name='front_axle']").set("pos", f"{wheelbase!r} 0 0.33")
    _find(scene, ".//position[@name='steer']").set("timeconst", repr(steering_time_constant))
    _size_road_meshes(scene, config)
    # domain randomisation: textured variants of the asphalt and ground materials (texels written after compiling,
    # see _write_texels) and the pool of roadside geoms (hidden in their own group unless randomised)
    asset, worldbody = _find(scene, "asset"), _find(scene, "worldbody")
    _add_textured_materials(asset)
    _add_roadside_pool(asset, worldbody)
    model = mujoco.MjModel.from_xml_string(ET.tostring(scene, encoding="unicode"))
    _write_texels(model)
    return model


def _merge_vehicle(scene: ET.Element, vehicle: ET.Element) -> None:
    """Append the vehicle's defaults, assets, bodies and actuators to the scene's sections of the same name."""
    for section in ("default", "asset", "worldbody", "actuator"):
        target = scene.find(section)
        if target is None:
            target = ET.SubElement(scene, section)
        for child in list(_find(vehicle, section)):
            target.append(child)


def _size_road_meshes(scene: ET.Element, config: RoadConfig) -> None:
    """Give the road meshes a placeholder road: a straight one of the right size (vertices are rewritten every
    episode)."""
    placeholder_road = Road(np.zeros(config.num_samples), config.ds, config.length)
    placeholder = road_meshes(placeholder_road, 0.2)
    for mesh_el in scene.findall("asset/mesh"):
        mesh = placeholder[mesh_el.attrib["name"]]
        mesh_el.set("vertex", " ".join(f"{v:.3f}" for v in mesh.vertices.ravel()))
        mesh_el.set("face", " ".join(str(i) for i in mesh.faces.ravel()))
        if mesh_el.get("name") == "road_surface":  # texture coordinates for the asphalt textures
            uv = asphalt_texcoords(placeholder_road)
            mesh_el.set("texcoord", " ".join(f"{v:.3f}" for v in uv.ravel()))


def _add_textured_materials(asset: ET.Element) -> None:
    """A flat placeholder texture and a material using it for every asphalt and ground texture, the materials
    copying the plain asphalt's and ground's attributes."""
    plain = {m.get("name"): m for m in asset.findall("material")}
    for surface, names in (("asphalt", ASPHALT_TEXTURES), ("ground", GROUND_TEXTURES)):
        for name in names:
            ET.SubElement(
                asset,
                "texture",
                name=f"tex_{name}",
                type="2d",
                builtin="flat",
                width=str(TEXTURE_SIZE),
                height=str(TEXTURE_SIZE),
                rgb1="1 1 1",
            )
            material = ET.SubElement(
                asset, "material", dict(plain[surface].attrib), name=f"{surface}_{name}", texture=f"tex_{name}"
            )
            if surface == "ground":
                repeat = _GROUND_REPEAT[name]
                material.set("texuniform", "true")
                material.set("texrepeat", f"{repeat!r} {repeat!r}")


def _add_roadside_pool(asset: ET.Element, worldbody: ET.Element) -> None:
    """The roadside mesh, its palette texture and material, and its geom in :data:`ROADSIDE_GROUP`."""
    faces = pool_faces()
    _, normals, texcoords = pool_mesh(None, 0)
    count = len(normals)
    # distinct placeholder vertices (MuJoCo merges repeated ones); the real ones are written per episode
    placeholder_vertices = np.stack([np.arange(count), np.arange(count) ** 2 % 97, np.arange(count) % 7], axis=1)
    ET.SubElement(
        asset,
        "mesh",
        name="roadside",
        inertia="shell",
        vertex=" ".join(str(v) for v in placeholder_vertices.ravel()),
        normal=" ".join(f"{v:.3f}" for v in normals.ravel()),
        texcoord=" ".join(f"{v:.4f}" for v in texcoords.ravel()),
        face=" ".join(str(i) for i in faces.ravel()),
    )
    ET.SubElement(
        asset,
        "texture",
        name="tex_roadside",
        type="2d",
        builtin="flat",
        width=str(PALETTE_SIDE),
        height=str(PALETTE_SIDE),
        rgb1="1 1 1",
    )
    ET.SubElement(asset, "material", name="roadside", texture="tex_roadside", specular="0", shininess="0")
    ET.SubElement(
        worldbody,
        "geom",
        name="roadside",
        type="mesh",
        mesh="roadside",
        material="roadside",
        group=str(ROADSIDE_GROUP),
        contype="0",
        conaffinity="0",
    )


def _write_texels(model: mujoco.MjModel) -> None:
    """Write the texels of the asphalt and ground textures and of the roadside palette into the compiled model
    (the MJCF declares them as flat placeholders of the right size)."""
    m, obj = model, mujoco.mjtObj
    for names in (ASPHALT_TEXTURES, GROUND_TEXTURES):
        for name in names:
            tex = mujoco.mj_name2id(m, obj.mjOBJ_TEXTURE, f"tex_{name}")
            size = int(m.tex_height[tex]) * int(m.tex_width[tex]) * int(m.tex_nchannel[tex])
            m.tex_data[m.tex_adr[tex] : m.tex_adr[tex] + size] = make_texture(name, TEXTURE_SIZE).ravel()
    tex = mujoco.mj_name2id(m, obj.mjOBJ_TEXTURE, "tex_roadside")
    palette = np.round(255 * PALETTE).astype(np.uint8)  # (64, 3): texel i at row i // 8, column i % 8
    m.tex_data[m.tex_adr[tex] : m.tex_adr[tex] + palette.size] = palette.ravel()


def asphalt_texcoords(road: Road) -> np.ndarray:
    """(V, 2) texture coordinates of the ``road_surface`` strip's vertices: (lateral, arc-length) coordinate over
    the tile size, so asphalt textures run along the road. Vertex order as in ``Road.strip_mesh``."""
    w = road.lane_width
    index: np.ndarray = np.arange(0, road.num_samples, _MESH_STRIDE)  # wide: np.append returns another shape type
    if index[-1] != road.num_samples - 1:
        index = np.append(index, road.num_samples - 1)
    uv = np.empty((2 * index.size, 2))
    uv[0::2, 0], uv[1::2, 0] = -w - SHOULDER, w + SHOULDER  # right then left vertex of each pair
    uv[0::2, 1] = uv[1::2, 1] = road.s[index]
    return uv / _ASPHALT_TILE
