# DJF x4 flow upsampling on the bundled known-motion frames, same schedule as the PAC flow demo.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_flow.py']
factor = 4
model = dict(net=dict(type='DJF', factor=factor, channels=2, residual=True), values_scale_with_resolution=True)
