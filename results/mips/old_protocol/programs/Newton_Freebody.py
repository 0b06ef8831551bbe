"""Newton_Freebody: a program synthesised by MIPS.

Regression methods: s1 LR, s2 LR, s3 LR, s4 LR, s5 LR, s6 LR, s7 LR, s8 LR, s9 LR, s10
LR, y1 LR.
State: s1, s2, s3, s4, s5, s6, s7, s8, s9, s10, initially 0, 0, 0, 0, 0, 0, 0, 0, 0, 0;
outputs are read from the state after the step.
"""


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = 0, 0, 0, 0, 0, 0, 0, 0, 0, 0
    ys = []
    for x1 in xs:
        s1, s2, s3, s4, s5, s6, s7, s8, s9, s10 = (
            -x1,
            s1,
            s2,
            s3,
            s4,
            -s5,
            -s6,
            s7,
            s8,
            s9,
        )
        ys.append(-s1 - 10*s10 - 2*s2 - 3*s3 - 4*s4 - 5*s5 + 6*s6 - 7*s7 - 8*s8 - 9*s9)
    return ys
