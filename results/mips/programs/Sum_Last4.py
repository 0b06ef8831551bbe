"""Sum_Last4: a program synthesised by MIPS.

Regression methods: s1 LR, s2 LR, s3 LR, s4 LR, y1 LR.
State: s1, s2, s3, s4, initially 0, 0, 0, 0; outputs are read from the state after the
step.
"""


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1, s2, s3, s4 = 0, 0, 0, 0
    ys = []
    for x1 in xs:
        s1, s2, s3, s4 = s2 + x1, s3 + x1, s4 + x1, x1
        ys.append(s1)
    return ys
