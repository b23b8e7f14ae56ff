# PAC (lite) x8 as the reference design: no residual base, trained by the demo recipe
# on the bundled Middlebury train regions, so the demo's table shows what the learned
# JBU base of pacjointupsample_lite_x8_demo.py buys. Results: tools/demo.py's results.json.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_middlebury.py']
factor = 8
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=1))
