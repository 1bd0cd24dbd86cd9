"""The 2-sphere S^2: icosphere meshes, the DOLFINx upwind DG solver, the spherical-harmonic
field of zonal kernels, and pictures.

Modules: ``icosphere`` (numpy meshes), ``mesh`` (the DOLFINx mesh), ``dg`` (the DG
discretisation), ``solver`` (``solve(method="fem")``), ``harmonic`` (the field by spherical
harmonics), ``plot`` (Mollweide / orthographic maps). Only this subpackage imports dolfinx or
mpi4py, and only when a mesh is built.
"""
