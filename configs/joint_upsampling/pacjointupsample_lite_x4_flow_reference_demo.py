# PAC (lite) x4 flow as the reference design (no residual base), trained by the flow
# demo recipe, beside the demo's bilinear-base model. Results: tools/demo.py's results.json.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_flow.py']
factor = 4
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=2),
             values_scale_with_resolution=True)
