"""Atomic file writes: a file appears complete or not at all (temporary file beside it, then
os.replace)."""

import csv
import json
import math
import os
import tempfile


def _umask():
    m = os.umask(0)
    os.umask(m)
    return m


def write_atomic(path, write, suffix=".tmp"):
    """Calls write(tmp) on a temporary file beside `path`, then renames it into place. The final
    file gets the usual mode (0666 & ~umask; mkstemp makes 0600 files)."""
    d = os.path.dirname(os.path.abspath(path))
    os.makedirs(d, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=suffix, dir=d)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def write_text_atomic(path, text):
    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)
    write_atomic(path, write)


def write_json_atomic(path, obj):
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True) + "\n")


def save_figure_atomic(fig, path, dpi=120):
    """A matplotlib figure as a PNG, atomically."""
    write_atomic(path, lambda tmp: fig.savefig(tmp, dpi=dpi, format="png"), suffix=".png")


def fmt_cell(v):
    """A CSV cell: floats at full precision (repr), None and non-finite floats empty."""
    if v is None:
        return ""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else ""
    return str(v)


def write_csv_atomic(path, columns, rows):
    def write(tmp):
        with open(tmp, "w", newline="") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(columns)
            for r in rows:
                w.writerow([fmt_cell(r.get(c, "")) for c in columns])
    write_atomic(path, write)
