"""Custom kernels, shipped inside the wheel as ``mdt_tensor.kernels``.

Every kernel here is an optimisation with a plain-torch reference path beside it (DESIGN.md,
principle 7); nothing in the library depends on a kernel being present.
"""
