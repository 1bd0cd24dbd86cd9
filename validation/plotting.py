"""Figure saving shared by the validation cases (no backend is selected here: matplotlib
falls back to Agg on a machine without a display; MPLBACKEND overrides)."""

import matplotlib.pyplot as plt

__all__ = ["plt", "save", "growth_rate_figure"]


def save(fig, out_dir, name):
    """Save ``fig`` as ``out_dir/name.png`` (if out_dir is given) and close it; return the path."""
    if out_dir is None:
        plt.close(fig)
        return None
    path = str(out_dir / f"{name}.png")
    fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return path


def growth_rate_figure(rows, betas, modes, mode_key, xlabel, tolerance, title, out_dir, name):
    """Relative growth-rate error against the mode, one line per (model, beta), from rows
    with keys "model" ("SA"/"USA"), "beta", ``mode_key`` and "rel_error"; saved as ``name``."""
    fig, ax = plt.subplots(figsize=(6, 4))
    for model, marker in (("SA", "o"), ("USA", "s")):
        for beta in betas:
            sel = [r for r in rows if r["model"] == model and r["beta"] == beta]
            ax.semilogy([r[mode_key] for r in sel], [r["rel_error"] for r in sel],
                        marker + "-", label=f"{model}, beta={beta:g}")
    ax.axhline(tolerance, color="r", ls="--", label="tolerance")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("relative error of the growth rate")
    ax.set_xticks(list(modes))
    ax.legend(fontsize=7, ncol=2)
    ax.set_title(title)
    return save(fig, out_dir, name)
