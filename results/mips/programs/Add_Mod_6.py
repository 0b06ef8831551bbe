"""Add_Mod_6: a program synthesised by MIPS.

Regression methods: s1 LR, y1 LR.
State: s1, initially 0; outputs are read from the state after the step.
"""


def run(xs):
    """Per-step outputs for the per-step inputs xs."""
    s1 = 0
    ys = []
    for x1 in xs:
        s1 = (s1 + x1) % 6
        ys.append(s1)
    return ys
