# PAC (lite: the reference design at DJF's size) x8 disparity upsampling on the bundled Middlebury scene (the `make demo` model).
# residual='jbu' (learn a correction to joint bilateral upsampling, itself a
# fixed-kernel PAC layer; the correction starts at zero) is the one departure from
# the reference design. Measured on the held-out region: with a bilinear base a few
# CPU minutes of training reach 3.65 px (300 it) / 3.57 px (1500 it), short of JBU's 3.05.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_middlebury.py']
factor = 8
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=1, residual='jbu'))
