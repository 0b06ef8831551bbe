"""Previous_Equals_Current: a program synthesised by MIPS.

Regression methods: s1 table, y1 LR.
State: s1, initially 7; outputs are read from the state after the step.
"""

# The value for s1 = 0..15 (rows), x1 = 0..7 (columns).
NEXT_S1 = [
    [7, 6, 5, 4, 3, 2, 1, 8],
    [7, 6, 5, 4, 3, 2, 9, 0],
    [7, 6, 5, 4, 3, 10, 1, 0],
    [7, 6, 5, 4, 11, 2, 1, 0],
    [7, 6, 5, 12, 3, 2, 1, 0],
    [7, 6, 13, 4, 3, 2, 1, 0],
    [7, 14, 5, 4, 3, 2, 1, 0],
    [15, 6, 5, 4, 3, 2, 1, 0],
    [7, 6, 5, 4, 3, 2, 1, 8],
    [7, 6, 5, 4, 3, 2, 9, 0],
    [7, 6, 5, 4, 3, 10, 1, 0],
    [7, 6, 5, 4, 11, 2, 1, 0],
    [7, 6, 5, 12, 3, 2, 1, 0],
    [7, 6, 13, 4, 3, 2, 1, 0],
    [7, 14, 5, 4, 3, 2, 1, 0],
    [15, 6, 5, 4, 3, 2, 1, 0],
]


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1 = 7
    ys = []
    for x1 in xs:
        s1 = NEXT_S1[s1][x1]
        ys.append((s1) // 8)
    return ys
