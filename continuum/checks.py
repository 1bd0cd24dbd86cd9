"""Checks of options where they enter the API: each returns the value in its canonical type or
raises an error that names the parameter and says what is wrong, before any work starts.

Nothing is converted silently: a string is not a number (``dt="0.1"``), a string is not a flag
(``limiter="no"`` is truthy), a bool is not an integer (``resolution=True``), and arrays must
hold numbers of one rectangular shape. Sizes are checked against the machine's memory
(:func:`check_memory`) so that a run that cannot fit is refused up front, with the size named.
"""

from __future__ import annotations

import math
import numbers
import os
from pathlib import Path

import numpy as np

__all__ = ["as_real_array", "check_real", "check_integer", "check_flag", "check_choice",
           "check_array", "check_seed", "check_memory", "check_output_path", "physical_memory"]


def check_real(value, name: str, *, low=None, high=None, low_open=False, high_open=False,
               finite=True) -> float:
    """``value`` as a float: a real number (not a bool or a string), finite unless ``finite``
    is False, in [low, high] (open at an end when ``low_open`` / ``high_open``)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {value!r} "
                        f"({type(value).__name__})")
    x = float(value)
    if math.isnan(x) or (finite and math.isinf(x)):
        raise ValueError(f"{name} must be a finite number, got {x}")
    if low is not None and (x < low or (low_open and x == low)):
        raise ValueError(f"{name} must be {'>' if low_open else '>='} {low:g}, got {x:g}")
    if high is not None and (x > high or (high_open and x == high)):
        raise ValueError(f"{name} must be {'<' if high_open else '<='} {high:g}, got {x:g}")
    return x


def check_integer(value, name: str, *, low=None, high=None) -> int:
    """``value`` as an int: an integer (not a bool, float or string) in [low, high]."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer, got {value!r} ({type(value).__name__})")
    n = int(value)
    if (low is not None and n < low) or (high is not None and n > high):
        span = f"in [{low}, {high}]" if low is not None and high is not None else \
            (f">= {low}" if low is not None else f"<= {high}")
        raise ValueError(f"{name} must be an integer {span}, got {n}")
    return n


def check_flag(value, name: str, *, allow_none=False):
    """``value`` as a bool (True/False only; None too when ``allow_none``)."""
    if value is None and allow_none:
        return None
    if not isinstance(value, (bool, np.bool_)):
        allowed = "True, False or None" if allow_none else "True or False"
        raise TypeError(f"{name} must be {allowed}, got {value!r} ({type(value).__name__})")
    return bool(value)


def check_choice(value, name: str, options):
    """``value`` if it is one of ``options`` (compared as strings, no conversion)."""
    if not isinstance(value, str) or value not in options:
        raise ValueError(f"{name} must be one of {tuple(options)}, got {value!r}")
    return value


def as_real_array(value, name: str) -> np.ndarray:
    """``value`` as a float64 array (no copy when it already is one) if it holds real numbers:
    ints and floats, not strings, bools, objects, complex numbers or ragged nesting."""
    try:
        raw = np.asarray(value)
    except ValueError:  # numpy refuses inhomogeneous nesting
        raise ValueError(f"{name} must be a rectangular array of numbers; got a ragged "
                         f"(inhomogeneous) nested sequence") from None
    if raw.dtype.kind not in "iuf":
        what = {"b": "booleans", "U": "strings", "S": "bytes", "O": "objects (ragged or mixed)",
                "c": "complex numbers"}.get(raw.dtype.kind, f"dtype {raw.dtype}")
        raise TypeError(f"{name} must hold real numbers, got {what}")
    return raw.astype(np.float64, copy=False)


def check_array(value, name: str, ndim: int | None = None, shape=None) -> np.ndarray:
    """``value`` as a new float64 array of real numbers (:func:`as_real_array`) with the given
    ``ndim`` / ``shape`` and finite entries."""
    out = np.array(as_real_array(value, name), copy=True)
    if ndim is not None and out.ndim != ndim:
        raise ValueError(f"{name} must be a {ndim}-d array, got shape {out.shape}")
    if shape is not None and out.shape != tuple(shape):
        raise ValueError(f"{name} must have shape {tuple(shape)}, got {out.shape}")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{name} has non-finite entries (NaN or inf)")
    return out


def check_seed(seed, name: str = "seed"):
    """``seed`` if numpy.random.default_rng accepts it as a seed: None, a non-negative integer,
    a sequence of them (SeedSequence entropy) or a numpy Generator / SeedSequence /
    BitGenerator (no strings, floats or bools)."""
    if seed is None or isinstance(seed, (np.random.Generator, np.random.SeedSequence,
                                         np.random.BitGenerator)):
        return seed
    if isinstance(seed, (list, tuple, np.ndarray)):
        entropy = np.asarray(seed)
        if entropy.ndim == 1 and entropy.size and entropy.dtype.kind in "iu" \
                and np.all(entropy >= 0):
            return seed
        raise TypeError(f"{name} must be a non-negative integer or a sequence of them, "
                        f"got {seed!r}")
    check_integer(seed, name, low=0)
    return seed


def physical_memory() -> int:
    """Bytes of physical memory of this machine (0 if unknown)."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0


def check_memory(nbytes: float, name: str, what: str) -> None:
    """Refuse (MemoryError naming ``name``) an allocation of ``nbytes`` for ``what`` larger than
    the machine's physical memory: it could only fail later, or swap for hours."""
    total = physical_memory()
    if total and nbytes > total:
        raise MemoryError(f"{name}: {what} needs {nbytes / 2**30:.3g} GiB, more than this "
                          f"machine's {total / 2**30:.3g} GiB of memory; reduce {name}")


def check_output_path(path, name: str, *, folder: bool) -> Path:
    """``path`` (str or PathLike) as a Path whose folder (``path`` itself when ``folder``, else
    its parent) exists or can be created and is writable; else ValueError naming ``name``."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{name} must be a path (str or Path), got {path!r}")
    path = Path(path)
    where = path if folder else path.parent
    try:
        where.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ValueError(f"{name}: cannot create the folder {str(where)!r} "
                         f"({err.strerror or err})") from None
    if not os.access(where, os.W_OK | os.X_OK):
        raise ValueError(f"{name}: the folder {str(where)!r} is not writable")
    return path
