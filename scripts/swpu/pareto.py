"""Pareto fronts: the points no other point beats on both of two costs (both minimised)."""


def front(points, x, y):
    """The non-dominated rows of `points` (dicts) for costs x and y (both smaller is better),
    sorted by x. A row is dominated when another is no worse in both and better in one; rows
    with equal costs all stay."""
    rows = sorted(points, key=lambda r: (float(r[x]), float(r[y])))
    out, best_y = [], float("inf")
    for r in rows:
        ry = float(r[y])
        if ry < best_y:
            out.append(r)
            best_y = ry
        elif ry == best_y and out and float(out[-1][x]) == float(r[x]):
            out.append(r)  # a tie with the last front point
    return out


def dominated_by(row, points, x, y):
    """The rows that dominate `row` (empty when it is on the front)."""
    rx, ry = float(row[x]), float(row[y])
    return [p for p in points
            if float(p[x]) <= rx and float(p[y]) <= ry and (float(p[x]) < rx or float(p[y]) < ry)]
