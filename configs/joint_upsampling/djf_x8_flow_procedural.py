# DJF x8 flow upsampling (bilinear base) trained on procedural flow only, selected and
# tested like the PAC model (_base_/procedural_flow.py).
_base_ = ['./_base_/demo_runtime.py', './_base_/procedural_flow_x8.py']
factor = 8
model = dict(net=dict(type='DJF', factor=factor, channels=2, residual=True), values_scale_with_resolution=True)
