# PAC (lite) x8 as the reference design (no residual base), trained on procedural RGB-D
# scenes only and evaluated like pacjointupsample_lite_x8_procedural.py.
# Measured numbers: `tools/demo.py --procedural` writes them to results.json.
_base_ = ['./_base_/demo_runtime.py', './_base_/procedural_middlebury.py']
factor = 8
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=1))
