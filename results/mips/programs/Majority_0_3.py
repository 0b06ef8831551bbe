"""Majority_0_3: a program synthesised by MIPS.

Regression methods: s1 LR, s2 LR, s3 LR, y1 SR.
State: s1, s2, s3, initially 0, 0, 0; outputs are read from the state after the step.
"""


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1, s2, s3 = 0, 0, 0
    ys = []
    for x1 in xs:
        s1, s2, s3 = (
            s1 + ((x1 == 0) * 1 - (x1 == 1) * 1),
            s2 + ((x1 == 0) * 1 - (x1 == 2) * 1),
            s3 + ((x1 == 0) * 1 - (x1 == 3) * 1),
        )
        ys.append((s1 < 0) * (s2 >= s1) * (s3 >= s1) + 2 * (s2 < 0) * (s1 > s2) * (s3 >= s2) + 3 * (s3 < 0) * (s1 > s3) * (s2 > s3))
    return ys
