# PAC (lite: the reference design at DJF's size) x8 disparity upsampling on the bundled
# Middlebury scenes (the `make demo` model).
# One departure from the reference design, because two training scenes are far too few
# to learn upsampling from scratch: the network learns a correction to joint bilateral
# upsampling (residual='jbu'), and that JBU layer, itself a PAC transposed conv, learns its
# adapting features too: its bandwidth, a colour transform, and a small guide CNN whose
# output is added to the colour features (learnable_jbu). At initialisation the whole
# model is exactly JBU. Measured on the held-out regions (Aloe, Motorcycle; RMSE px):
# JBU 3.448 / 3.053; this model after 500 iterations 3.10 / 2.99 (seed 0), 3.23 / 2.92 (seed 1).
# Without the learned JBU layer (fixed JBU base) the correction net does not beat JBU
# (3.439 / 3.063 after 500 iterations); with a bilinear base a few CPU minutes reach 3.57
# on Motorcycle alone.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_middlebury.py']
factor = 8
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=1, residual='jbu',
                      learnable_jbu=dict(guide_widths=(16, 16))))
