"""The application layer: the ``meanfield`` command line, on top of every other layer.

``meanfield demo`` and ``meanfield run STUDY.toml`` dispatch a study to the package that runs
it: ``forgetting`` for the mean-field forgetting studies, ``realmodel`` for the studies of a
real transformer (``[study] kind = "realmodel"``).
"""
