"""Fixtures for the simulator's tests: meshes that are always shut down."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from simulator.mesh import Latencies, Mesh, Profile, build_mesh

type MeshFactory = Callable[..., Mesh]


@pytest.fixture
def make_mesh() -> Iterator[MeshFactory]:
    """Build meshes with `build_mesh`'s arguments (fast latencies by default)."""
    meshes: list[Mesh] = []

    def make(
        universal: int = 3,
        relays: int = 1,
        *,
        profile: Profile = Profile.V1,
        latencies: Latencies | None = None,
        seed: int = 1,
        sessions: bool = False,
        large_mesh: bool = True,
    ) -> Mesh:
        # Command semantics are tested without sessions (test_auth.py has those).
        mesh = build_mesh(
            universal,
            relays,
            profile=profile,
            latencies=latencies or Latencies.fast(),
            seed=seed,
            sessions=sessions,
            large_mesh=large_mesh,
        )
        meshes.append(mesh)
        return mesh

    yield make
    for mesh in meshes:
        mesh.shutdown()
