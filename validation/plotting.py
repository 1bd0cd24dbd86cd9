"""Figure saving shared by the validation cases (no backend is selected here: matplotlib
falls back to Agg on a machine without a display; MPLBACKEND overrides)."""

import matplotlib.pyplot as plt

__all__ = ["plt", "save"]


def save(fig, out_dir, name):
    """Save ``fig`` as ``out_dir/name.png`` (if out_dir is given) and close it; return the path."""
    if out_dir is None:
        plt.close(fig)
        return None
    path = str(out_dir / f"{name}.png")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path
