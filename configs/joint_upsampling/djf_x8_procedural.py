# DJF x8 trained on procedural RGB-D scenes only, evaluated like
# pacjointupsample_lite_x8_procedural.py (select on one real scene, test on the other).
_base_ = ['./_base_/demo_runtime.py', './_base_/procedural_middlebury.py']
factor = 8
model = dict(net=dict(type='DJF', factor=factor, channels=1, residual=True))
