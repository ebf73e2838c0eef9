"""A pure-Python loop convolution: correct, slow, accumulating in Python floats (float64)."""
import itertools

import numpy as np


def conv(x, w, b, *, stride, padding, dilation, groups):
    # pure-python loops, the slowest plausible correct implementation
    N, C = x.shape[:2]
    O, K = w.shape[0], w.shape[2:]
    d = len(K)
    xp = np.pad(x, [(0,0),(0,0)] + list(padding))
    outs = [(P - dl*(k-1) - 1)//s + 1 for P, k, s, dl in zip(xp.shape[2:], K, stride, dilation)]
    y = np.zeros((N, O, *outs), dtype=x.dtype)
    cg, og = C // groups, O // groups
    xl, wl = xp.tolist(), w.tolist()
    for n in range(N):
        for o in range(O):
            g = o // og
            for p in itertools.product(*[range(q) for q in outs]):
                acc = 0.0 if b is None else float(b[o])
                for c in range(cg):
                    for k in itertools.product(*[range(q) for q in K]):
                        xv, wv = xl[n][g*cg + c], wl[o][c]
                        for ax in range(d):
                            xv, wv = xv[p[ax]*stride[ax] + k[ax]*dilation[ax]], wv[k[ax]]
                        acc += xv * wv
                y[(n, o) + p] = acc
    return y
