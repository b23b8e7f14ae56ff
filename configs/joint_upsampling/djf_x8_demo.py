# DJF x8 on the bundled Middlebury scenes, same data and schedule as the PAC demo.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_middlebury.py']
factor = 8
model = dict(net=dict(type='DJF', factor=factor, channels=1, residual=True))
