"""The circle S^1: equispaced grids, the FFT / Fourier-expansion field, the Fourier
pseudo-spectral and finite-volume solvers, the Kuramoto exact solution, cluster counting.

Modules: ``grid`` (nodes, Fourier tools), ``field`` (the S^1 fast paths and their choice),
``spectral``, ``fv`` (solvers, reached through ``continuum.solve``), ``exact``, ``clusters``.
"""
