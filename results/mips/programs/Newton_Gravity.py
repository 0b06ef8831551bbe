"""Newton_Gravity: a program synthesised by MIPS.

Regression methods: s1 LR, s2 LR, y1 LR.
State: s1, s2, initially 0, 0; outputs are read from the state after the step.
"""


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1, s2 = 0, 0
    ys = []
    for x1 in xs:
        s1, s2 = s1 + s2 + x1 - 1, s2 + x1 - 1
        ys.append(s1)
    return ys
