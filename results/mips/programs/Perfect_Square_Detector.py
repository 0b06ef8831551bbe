"""Perfect_Square_Detector: a program synthesised by MIPS.

Regression methods: s1 table, y1 LR.
State: s1, initially 0; outputs are read from the state after the step.
"""

# The value for x1 = 0..19.
NEXT_S1 = [1, 1, 0, 0, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1 = 0
    ys = []
    for x1 in xs:
        s1 = NEXT_S1[x1]
        ys.append(s1)
    return ys
