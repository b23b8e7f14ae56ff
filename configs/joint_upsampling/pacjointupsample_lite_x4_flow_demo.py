# PAC (lite) x4 flow upsampling on the bundled known-motion frames; u and v share weights.
# Learns a correction to bilinear upsampling (residual=True, last conv zero-initialised),
# like the DJF flow demo. The depth demo's JBU base suits flow less: flow's low-res input
# is an area average centred at f*j + (f-1)/2, half a pixel from where the JBU layer's
# integer transposed-conv geometry puts it (f*j + (f-1)//2).
# Measured numbers: tools/demo.py writes them to results.json.
_base_ = ['./_base_/demo_runtime.py', './_base_/bundled_flow.py']
factor = 4
model = dict(net=dict(type='PacJointUpsampleLite', factor=factor, channels=2, residual=True),
             values_scale_with_resolution=True)
