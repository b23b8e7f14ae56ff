# PAC (lite) x4 flow upsampling with a bilinear base (the flow demo's design,
# pacjointupsample_lite_x4_flow_demo.py) trained on procedural flow only, selected on
# one real stereo-as-flow scene and tested on the other (_base_/procedural_flow.py).
# Measured numbers: `tools/demo.py --procedural --tasks flow` writes them to results.json.
_base_ = ['./_base_/demo_runtime.py', './_base_/procedural_flow.py']
factor = 4
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=2, residual=True),
             values_scale_with_resolution=True)
