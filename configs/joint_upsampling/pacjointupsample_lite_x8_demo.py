# PAC (lite: the reference design at DJF's size) x8 disparity upsampling on the bundled Middlebury scene (the `make demo` model).
# residual=True (learn a correction to bilinear upsampling) is the one departure
# from the reference design: it lets a few CPU minutes of training beat the baselines.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_middlebury.py']
factor = 8
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=1, residual=True))
