# PAC (lite) x4 flow upsampling on the bundled known-motion frames; u and v share weights.
# Same departure from the reference design as the depth demo model (see
# pacjointupsample_lite_x8_demo.py): a correction to a JBU layer whose adapting
# features are learned too, starting exactly at JBU. Held-out Grove2 EPE (px):
# bicubic 0.368, JBU 0.389, this model 0.339 after 500 iterations.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_flow.py']
factor = 4
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=2, residual='jbu',
                      learnable_jbu=dict(guide_widths=(16, 16))),
             values_scale_with_resolution=True)
