# The demo model (PAC lite, learned JBU base; pacjointupsample_lite_x8_demo.py) trained on
# procedural RGB-D scenes only, selected on one real scene's val region and tested on the
# other real scene (_base_/procedural_middlebury.py), so the test scene is never trained or
# selected on. Measured numbers: `tools/demo.py --procedural` writes them to results.json.
_base_ = ['./_base_/demo_runtime.py', './_base_/procedural_middlebury.py']
factor = 8
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=1, residual='jbu',
                      learnable_jbu=dict(guide_widths=(16, 16))))
