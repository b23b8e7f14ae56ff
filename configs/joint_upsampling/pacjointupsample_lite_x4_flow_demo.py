# PAC (lite) x4 flow upsampling on the bundled known-motion frames; u and v share weights.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_flow.py']
factor = 4
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=2, residual=True), values_scale_with_resolution=True)
